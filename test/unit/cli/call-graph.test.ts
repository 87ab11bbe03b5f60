import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callGraphDot, callGraphMermaid, callTable, displayNames, foldCalls, targetOf } from '../../../src/cli/call-graph.ts';
import { decision, ORCHESTRATOR, PLANNER, TOOLS } from '../audit/fixtures.ts';

const DEMO = [
  decision(),
  decision(),
  decision({ tool: 'delete_all', decision: 'deny', rule: null, reason: 'ToolNotAllowed' }),
  decision({ rpcMethod: 'tools/list', tool: undefined }),
  decision({ local: PLANNER, transport: 'a2a', rpcMethod: 'message/send', tool: undefined }),
  decision({ local: PLANNER, transport: 'a2a', rpcMethod: 'tasks/cancel', tool: undefined, decision: 'deny', rule: null }),
];

describe('call graph', () => {
  it('what a record is a call to', () => {
    assert.equal(targetOf(decision()), 'tools/call search');
    assert.equal(targetOf(decision({ rpcMethod: 'prompts/get', tool: undefined, prompt: 'summary' })), 'prompts/get summary');
    assert.equal(targetOf(decision({ rpcMethod: 'resources/read', tool: undefined, resource: 'file:///a' })), 'resources/read file:///a');
    assert.equal(targetOf(decision({ rpcMethod: 'initialize', tool: undefined })), 'initialize');
    assert.equal(targetOf(decision({ transport: 'http', rpcMethod: undefined, tool: undefined, method: 'GET', path: '/healthz' })), 'GET /healthz');
  });

  it('folds records into caller → agent → target with calls and denials, sorted', () => {
    assert.deepEqual(foldCalls(DEMO).map((c) => [c.caller, c.agent, c.target, c.calls, c.denied]), [
      [ORCHESTRATOR, PLANNER, 'message/send', 1, 0],
      [ORCHESTRATOR, PLANNER, 'tasks/cancel', 1, 1],
      [ORCHESTRATOR, TOOLS, 'tools/call delete_all', 1, 1],
      [ORCHESTRATOR, TOOLS, 'tools/call search', 2, 0],
      [ORCHESTRATOR, TOOLS, 'tools/list', 1, 0],
    ]);
  });

  it('an egress record\'s peer is the agent called; the two sides are kept apart, never summed', () => {
    const egress = decision({ direction: 'egress', local: ORCHESTRATOR, peer: TOOLS });
    const calls = foldCalls([decision(), egress]);
    assert.deepEqual(calls.map((c) => [c.caller, c.agent, c.decidedBy, c.calls]), [[ORCHESTRATOR, TOOLS, 'egress', 1], [ORCHESTRATOR, TOOLS, 'inbound', 1]]);
    assert.match(callTable(calls), /^PEER\s+AGENT\s+TOOL\/METHOD\s+DECIDED BY\s+CALLS\s+DENIED$/m);
  });

  it('the table: short names in one trust domain, counts and denials', () => {
    assert.equal(callTable(foldCalls(DEMO)), [
      'PEER                  AGENT            TOOL/METHOD             CALLS   DENIED',
      'agents/orchestrator   agents/planner   message/send            1       0',
      'agents/orchestrator   agents/planner   tasks/cancel            1       1',
      'agents/orchestrator   agents/tools     tools/call delete_all   1       1',
      'agents/orchestrator   agents/tools     tools/call search       2       0',
      'agents/orchestrator   agents/tools     tools/list              1       0',
      '',
    ].join('\n'));
  });

  it('full SPIFFE IDs when two trust domains meet, so they never look alike', () => {
    const partner = 'spiffe://partner.example/ns/agents/agent/orchestrator';
    const name = displayNames(foldCalls([decision(), decision({ peer: partner })]));
    assert.equal(name(partner), partner);
    assert.equal(name(ORCHESTRATOR), ORCHESTRATOR);
  });

  it('DOT: denied edges red and dashed, allowed ones plain; a mixed call draws both', () => {
    const dot = callGraphDot(foldCalls([...DEMO, decision({ tool: 'search', decision: 'deny', rule: null })]));
    assert.match(dot, /^digraph calls \{/);
    assert.match(dot, /"agents\/orchestrator" -> "agents\/tools" \[label="tools\/call delete_all \(1 denied\)", color=red, fontcolor=red, style=dashed\];/);
    assert.match(dot, /"agents\/orchestrator" -> "agents\/tools" \[label="tools\/call search \(2\)"\];/);
    assert.match(dot, /"agents\/orchestrator" -> "agents\/tools" \[label="tools\/call search \(1 denied\)", color=red/);
    assert.equal(dot.match(/->/g)!.length, 6, 'five calls, one of them both allowed and denied');
  });

  it('DOT escapes a name the peer chose', () => {
    const dot = callGraphDot(foldCalls([decision({ tool: 'x" ]; evil -> "y\\\nz' })]));
    assert.match(dot, /label="tools\/call x\\" \]; evil -> \\"y\\\\ z \(1\)"/);
  });

  it('Mermaid: dashed denied edges, red by linkStyle, names as entity codes', () => {
    const m = callGraphMermaid(foldCalls(DEMO));
    assert.equal(m, [
      'flowchart LR',
      '  n0["agents/orchestrator"]',
      '  n1["agents/planner"]',
      '  n2["agents/tools"]',
      '  n0 -->|"message/send (1)"| n1',
      '  n0 -.->|"tasks/cancel (1 denied)"| n1',
      '  n0 -.->|"tools/call delete_all (1 denied)"| n2',
      '  n0 -->|"tools/call search (2)"| n2',
      '  n0 -->|"tools/list (1)"| n2',
      '  linkStyle 1,2 stroke:#d00,color:#d00',
      '',
    ].join('\n'));
    assert.match(callGraphMermaid(foldCalls([decision({ tool: 'a"|b<c>' })])), /\|"tools\/call a#34;#124;b#60;c#62; \(1\)"\|/);
  });
});
