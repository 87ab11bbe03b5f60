import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Narrowing, PolicyPeer } from '../../../../src/api/documents.ts';
import { decideCall, decideRoute, type Grants, grantsOf } from '../../../../src/sdk/requests/decide.ts';
import type { RpcMessage } from '../../../../src/sdk/requests/jsonrpc.ts';
import { matcher } from '../../../../src/sdk/requests/pattern.ts';

const orchestrator = 'spiffe://cluster.local/ns/agents/agent/orchestrator';
const mcpRule: Narrowing = { index: 1, rule: 'allow[1]: agent agents/orchestrator', http: { paths: ['/mcp'] }, mcp: { tools: ['search', 'files_*'], prompts: ['summary'] } };
const a2aRule: Narrowing = { index: 2, rule: 'allow[2]: agent agents/orchestrator', http: { methods: ['POST'], paths: ['/a2a'] }, a2a: { methods: ['message/send', 'tasks/get'] } };
const cardRule: Narrowing = { index: 3, rule: 'allow[3]: agent agents/orchestrator', http: { methods: ['GET'], paths: ['/.well-known/*'] } };
const narrowed: Grants = { unrestricted: false, narrowings: [mcpRule, a2aRule, cardRule] };
const call = (method: string, params?: unknown, id: number | undefined = 1): RpcMessage => ({ kind: 'call', method, params, ...(id === undefined ? {} : { id }) });

describe('matcher: one pattern syntax, exact code points', () => {
  it('exact names, * globs, prefix paths', () => {
    const m = matcher(['search', 'files_*', '/api/*']);
    assert.ok(m('search') && m('files_read') && m('files_') && m('/api/v1/x'));
    assert.ok(!m('Search') && !m('search ') && !m('xfiles_read') && !m('/api'));
  });

  it('a Cyrillic look-alike is another name; only a glob can match it', () => {
    const lookalike = '\u0455earch'; // Cyrillic dze, looks like "s"
    assert.ok(!matcher(['search'])(lookalike));
    assert.ok(matcher(['*earch'])(lookalike));
    assert.ok(matcher(['*'])(lookalike));
  });

  it('regular-expression characters in patterns are literal', () => {
    const m = matcher(['a.b', '(x)*']);
    assert.ok(m('a.b') && !m('aXb') && m('(x)yz') && !m('xyz'));
  });
});

describe('grantsOf', () => {
  const allow: PolicyPeer[] = [{ spiffeID: orchestrator, rule: 'allow[1]: agent agents/orchestrator', rules: [1] }, { spiffeID: 'spiffe://cluster.local/ns/agents/agent/admin', rule: 'allow[0]: agent agents/admin' }];
  const section = { mode: 'AllowList' as const, allow, narrowings: [mcpRule] };
  it('a narrowed peer gets its narrowings, an open one its rule index, an unlisted one anything', () => {
    assert.deepEqual(grantsOf(section, orchestrator), { unrestricted: false, narrowings: [mcpRule] });
    assert.deepEqual(grantsOf(section, 'spiffe://cluster.local/ns/agents/agent/admin'), { unrestricted: true, rule: 0 });
    assert.deepEqual(grantsOf(section, 'spiffe://cluster.local/ns/x/agent/y'), { unrestricted: true, rule: null });
    assert.deepEqual(grantsOf(undefined, orchestrator), { unrestricted: true, rule: null });
  });
});

describe('decideRoute', () => {
  it('an unrestricted peer: allowed without reading the body', () => {
    assert.deepEqual(decideRoute({ unrestricted: true, rule: 0 }, 'DELETE', '/anything', true), { verdict: 'allow', rule: 0, transport: 'http' });
  });

  it('a path or method no rule covers: refused naming the rules', () => {
    const v = decideRoute(narrowed, 'POST', '/admin', true);
    assert.equal(v.verdict, 'deny');
    assert.match((v as { message: string }).message, /POST \/admin is not allowed by allow\[1\]: agent agents\/orchestrator \(paths \/mcp\)/);
    assert.equal(decideRoute(narrowed, 'GET', '/a2a', false).verdict, 'deny');
  });

  it('paths with dot segments or encoded separators are refused where rules name paths', () => {
    for (const p of ['/mcp/../admin', '/x/./mcp', '//mcp', '/%2e%2e/admin', '/mcp%2Fx', '/mcp\\x']) {
      assert.equal((decideRoute(narrowed, 'POST', p, true) as { reason?: string }).reason, 'AmbiguousPath', p);
    }
  });

  it('an http-only rule allows the request as it is; an mcp route is inspected when there is a body', () => {
    assert.deepEqual(decideRoute(narrowed, 'GET', '/.well-known/agent-card.json', false), { verdict: 'allow', rule: 3, transport: 'http' });
    assert.deepEqual(decideRoute(narrowed, 'GET', '/mcp', false), { verdict: 'allow', rule: 1, transport: 'mcp', streams: [mcpRule] });
    assert.deepEqual(decideRoute(narrowed, 'POST', '/mcp', true), { verdict: 'inspect', candidates: [mcpRule], transport: 'mcp' });
    assert.deepEqual(decideRoute(narrowed, 'POST', '/a2a', true), { verdict: 'inspect', candidates: [a2aRule], transport: 'a2a' });
  });
});

describe('decideCall', () => {
  it('MCP: the handshake, ping, notifications and lists always pass; list calls carry what may be seen', () => {
    for (const m of ['initialize', 'ping', 'notifications/initialized', 'notifications/cancelled', 'tools/list', 'prompts/list', 'resources/list', 'resources/templates/list']) {
      assert.equal(decideCall([mcpRule], call(m, {})).allowed, true, m);
    }
    const list = decideCall([mcpRule], call('tools/list')).list!;
    assert.equal(list.kind, 'tools');
    assert.ok(list.allowed('search') && list.allowed('files_read') && !list.allowed('delete_all'));
  });

  it('tools/call: the named tool must be listed; the refusal names the rule and the tool', () => {
    assert.deepEqual(decideCall([mcpRule], call('tools/call', { name: 'search', arguments: {} })), { rpcMethod: 'tools/call', tool: 'search', allowed: true, rule: 1, transport: 'mcp' });
    const v = decideCall([mcpRule], call('tools/call', { name: 'delete_all' }));
    assert.equal(v.allowed, false);
    assert.equal(v.reason, 'ToolNotAllowed');
    assert.equal(v.tool, 'delete_all');
    assert.match(v.message!, /allow\[1\]: agent agents\/orchestrator does not allow tools\/call of tool "delete_all" \(tools: search, files_\*\)/);
  });

  it('a look-alike tool name is refused; a name that is not NFC is refused before matching', () => {
    assert.equal(decideCall([mcpRule], call('tools/call', { name: '\u0455earch' })).reason, 'ToolNotAllowed');
    const decomposed = 'files_cafe\u0301';
    assert.equal(decideCall([{ ...mcpRule, mcp: { tools: ['*'] } }], call('tools/call', { name: decomposed })).reason, 'NonNFCName');
  });

  it('a call that names nothing, or not with a string, is refused', () => {
    assert.equal(decideCall([mcpRule], call('tools/call', {})).reason, 'MissingName');
    assert.equal(decideCall([mcpRule], call('tools/call', { name: ['search'] })).reason, 'MissingName');
    assert.equal(decideCall([mcpRule], call('prompts/get', { name: 'summary' })).allowed, true);
    assert.equal(decideCall([mcpRule], call('resources/read', { uri: 'file:///etc/passwd' })).reason, 'ResourceNotAllowed');
    assert.equal(decideCall([mcpRule], call('completion/complete', { ref: { type: 'ref/prompt', name: 'summary' } })).allowed, true);
    assert.equal(decideCall([mcpRule], call('completion/complete', { ref: { type: 'ref/prompt', name: 'secret' } })).reason, 'PromptNotAllowed');
  });

  it('an MCP method the policy does not know is refused', () => {
    assert.equal(decideCall([mcpRule], call('tools/delete', { name: 'search' })).reason, 'UnknownMethod');
  });

  it('A2A: methods by name', () => {
    assert.equal(decideCall([a2aRule], call('message/send', { message: {} })).allowed, true);
    const v = decideCall([a2aRule], call('tasks/cancel', { id: 't1' }));
    assert.deepEqual([v.allowed, v.reason, v.transport], [false, 'MethodNotAllowed', 'a2a']);
    assert.match(v.message!, /allow\[2\]: agent agents\/orchestrator does not allow the A2A method "tasks\/cancel"/);
  });

  it('two rules on one route: a call passes when either allows it; the list shows the union', () => {
    const other: Narrowing = { index: 4, rule: 'allow[4]: selector team=x', mcp: { tools: ['delete_all'] } };
    assert.equal(decideCall([mcpRule, other], call('tools/call', { name: 'delete_all' })).rule, 4);
    const list = decideCall([mcpRule, other], call('tools/list')).list!;
    assert.ok(list.allowed('delete_all') && list.allowed('search') && !list.allowed('drop'));
  });

  it('a response the client sends back (e.g. to sampling) is not a call', () => {
    assert.equal(decideCall([mcpRule], { kind: 'response', id: 3 }).allowed, true);
  });
});
