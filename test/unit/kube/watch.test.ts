import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, parseWatchLine } from '../../../src/kube/watch.ts';

test('a watch line is one event: its type and object', () => {
  assert.deepEqual(parseWatchLine('{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"}}}'),
    { type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '5' } } });
  assert.equal(parseWatchLine<{ code: number }>('{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}')?.object.code, 410);
  assert.equal(parseWatchLine('{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}')?.type, 'BOOKMARK');
});

test('blank, garbled, unknown or object-less lines are skipped, not thrown', () => {
  for (const line of ['', '  ', '{"type":"ADDED"', 'null', '{"type":"SOMETHING","object":{}}', '{"type":"ADDED"}', '{"type":"ADDED","object":"x"}']) {
    assert.equal(parseWatchLine(line), undefined, line);
  }
});

test('chunks split anywhere still make whole lines; the unfinished tail waits for the next chunk', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push('{"a":1}\n{"b"'), ['{"a":1}']);
  assert.deepEqual(s.push(':2}'), []);
  assert.deepEqual(s.push('\n\n{"c":3}\n'), ['{"b":2}', '', '{"c":3}']);
});
