import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { filterJsonAnswer, type ListCalls, SseListFilter } from '../../../../src/sdk/requests/filter.ts';
import { idKey, rpcBody } from '../../../../src/sdk/requests/jsonrpc.ts';
import { matcher } from '../../../../src/sdk/requests/pattern.ts';

const tools = (...names: string[]) => names.map((name) => ({ name, description: `the ${name} tool`, inputSchema: { type: 'object' } }));
const answer = (id: unknown, ...names: string[]) => ({ jsonrpc: '2.0', id, result: { tools: tools(...names), nextCursor: 'c2' } });
const calls = (): ListCalls => new Map([[idKey(7), { kind: 'tools', allowed: matcher(['search']) }]]);
const withheld = () => 'WITHHELD';

describe('rpcBody', () => {
  it('single calls, notifications, batches and responses', () => {
    assert.deepEqual(rpcBody({ jsonrpc: '2.0', id: 1, method: 'ping' }, 10), { batch: false, messages: [{ kind: 'call', method: 'ping', id: 1, params: undefined }] });
    assert.deepEqual(rpcBody([{ jsonrpc: '2.0', method: 'notifications/initialized' }, { jsonrpc: '2.0', id: 'a', result: {} }], 10), {
      batch: true, messages: [{ kind: 'call', method: 'notifications/initialized', params: undefined }, { kind: 'response', id: 'a' }],
    });
  });

  it('malformed JSON-RPC is named', () => {
    const invalid = (v: unknown) => (rpcBody(v, 10) as { invalid?: string }).invalid;
    assert.match(invalid({ id: 1, method: 'ping' })!, /lacks "jsonrpc": "2.0"/);
    assert.match(invalid({ jsonrpc: '2.0', id: 1, method: 7 })!, /method that is not a string/);
    assert.match(invalid({ jsonrpc: '2.0', id: {}, method: 'ping' })!, /id that is not/);
    assert.match(invalid({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: 'search' })!, /params/);
    assert.match(invalid([])!, /empty batch/);
    assert.match(invalid('tools/call')!, /not a JSON-RPC object/);
    assert.match(invalid({ jsonrpc: '2.0', id: 1 })!, /neither a request nor a response/);
  });

  it('a batch past the limit is refused whole', () => {
    const huge = Array.from({ length: 10_001 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'ping' }));
    assert.deepEqual(rpcBody(huge, 100), { invalid: 'a batch of 10001 calls (at most 100)', reason: 'BatchTooLarge' });
  });
});

describe('filterJsonAnswer', () => {
  it('cuts the list answering the call; other messages and fields stay', () => {
    const out = JSON.parse(filterJsonAnswer(JSON.stringify(answer(7, 'search', 'delete_all', '\u0455earch')), calls(), withheld));
    assert.deepEqual(out, answer(7, 'search'));
  });

  it('in a batch, only the answers to list calls change', () => {
    const other = { jsonrpc: '2.0', id: 8, result: { tools: tools('delete_all') } };
    const out = JSON.parse(filterJsonAnswer(JSON.stringify([answer(7, 'search', 'delete_all'), other]), calls(), withheld));
    assert.deepEqual(out, [answer(7, 'search'), other]);
  });

  it('an answer for another id, or an error, passes byte for byte; an unreadable one is withheld', () => {
    const text = JSON.stringify(answer(8, 'delete_all'));
    assert.equal(filterJsonAnswer(text, calls(), withheld), text);
    // "7" answers call 7 for clients that compare Number(id): it is filtered too.
    assert.deepEqual(JSON.parse(filterJsonAnswer(JSON.stringify(answer('7', 'search', 'delete_all')), calls(), withheld)), answer('7', 'search'));
    const error = '{"jsonrpc":"2.0","id":7,"error":{"code":-1,"message":"x"}}';
    assert.equal(filterJsonAnswer(error, calls(), withheld), error);
    assert.equal(filterJsonAnswer('{"jsonrpc":"2.0","id":7,"result":{"tools":[', calls(), withheld), 'WITHHELD');
  });

  it('by shape, for a stream tied to no call', () => {
    const any: ListCalls = { any: { tools: matcher(['search']), prompts: matcher([]), resources: matcher([]) } };
    assert.deepEqual(JSON.parse(filterJsonAnswer(JSON.stringify(answer(99, 'search', 'delete_all')), any, withheld)), answer(99, 'search'));
  });
});

describe('SseListFilter', () => {
  const stream = [
    ': keep-alive\r\n\r\n',
    'event: message\r\nid: 1\r\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\r\n\r\n',
    `event: message\r\nid: 2\r\ndata: ${JSON.stringify(answer(7, 'search', 'delete_all'))}\r\n\r\n`,
    'data: not json\n\n',
  ].join('');

  it('rewrites only the event answering the list call, wherever the chunks split', () => {
    const expected = stream.replace(`event: message\r\nid: 2\r\ndata: ${JSON.stringify(answer(7, 'search', 'delete_all'))}\r\n\r\n`, `event: message\nid: 2\ndata: ${JSON.stringify(answer(7, 'search'))}\n\n`);
    for (let cut = 0; cut <= stream.length; cut++) {
      const f = new SseListFilter(calls());
      const out = f.push(stream.slice(0, cut)) + f.push(stream.slice(cut)) + f.end();
      assert.equal(out, expected, `split at ${cut}`);
    }
  });

  it('passes events on as soon as they end; holds back only an unfinished one', () => {
    const f = new SseListFilter(calls());
    assert.equal(f.push(': ping\n\ndata: {"jsonrpc":"2.0","id":7,'), ': ping\n\n');
    assert.equal(f.push('"result":{"tools":[{"name":"delete_all"}]}}\n\n'), 'data: {"jsonrpc":"2.0","id":7,"result":{"tools":[]}}\n\n');
  });

  it('a data line split over several lines is one message', () => {
    const f = new SseListFilter(calls());
    assert.equal(f.push('data: {"jsonrpc":"2.0","id":7,\ndata: "result":{"tools":[{"name":"search"},{"name":"x"}]}}\n\n'), 'data: {"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"search"}]}}\n\n');
  });
});
