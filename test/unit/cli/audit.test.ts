// `agent-identity audit` from a file and from stdin: no cluster, no kubeconfig.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { auditLine } from '../../../src/audit/line.ts';
import { readAuditLines } from '../../../src/cli/audit.ts';
import { decision, PLANNER } from '../audit/fixtures.ts';

const CLI = join(resolve(import.meta.dirname, '..', '..', '..'), 'src', 'cli', 'main.ts');

function cli(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = execFile(process.execPath, [CLI, ...args], { env: { ...process.env, KUBECONFIG: '/nonexistent/kubeconfig' } }, (err, stdout, stderr) => {
      res({ code: err === null ? 0 : Number(err.code), stdout, stderr });
    });
    p.stdin!.end(input ?? '');
  });
}

// A proxy's stdout: its own log lines around the audit lines, and a line cut short by a restart.
const LOG = [
  '{"time":"2026-12-07T10:00:00.000Z","level":"info","msg":"listening","inbound":{"port":8443}}',
  auditLine(decision()).trimEnd(),
  auditLine(decision()).trimEnd(),
  auditLine(decision({ tool: 'delete_all', decision: 'deny', rule: null, reason: 'ToolNotAllowed' })).trimEnd(),
  auditLine(decision({ local: PLANNER, transport: 'a2a', rpcMethod: 'tasks/cancel', tool: undefined, decision: 'deny', rule: null })).trimEnd(),
  auditLine(decision()).slice(0, 80),
  '',
].join('\n');

describe('agent-identity audit', () => {
  it('reads audit lines and counts the other lines it skipped', async () => {
    const read = await readAuditLines(Readable.from([LOG.slice(0, 150), LOG.slice(150)]));
    assert.equal(read.records.length, 4);
    assert.equal(read.skipped, 2);
  });

  it('from a file: the who-called-what table', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'audit-cli-')), 'proxy.log');
    writeFileSync(path, LOG);
    const r = await cli(['audit', '-f', path]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, [
      'PEER                  AGENT            TOOL/METHOD             CALLS   DENIED',
      'agents/orchestrator   agents/planner   tasks/cancel            1       1',
      'agents/orchestrator   agents/tools     tools/call delete_all   1       1',
      'agents/orchestrator   agents/tools     tools/call search       2       0',
      '',
    ].join('\n'));
  });

  it('from stdin: -o dot, -o mermaid and -o json', async () => {
    assert.match((await cli(['audit', '-o', 'dot'], LOG)).stdout, /-> "agents\/tools" \[label="tools\/call delete_all \(1 denied\)", color=red/);
    assert.match((await cli(['audit', '-f', '-', '-o', 'mermaid'], LOG)).stdout, /^flowchart LR\n[\s\S]*linkStyle 0,1 stroke:#d00/);
    const json = JSON.parse((await cli(['audit', '-o', 'json'], LOG)).stdout);
    assert.equal(json.records, 4);
    assert.equal(json.skippedLines, 2);
    assert.equal(json.calls[0].agent, PLANNER);
  });

  it('says so when there is no audit line at all', async () => {
    const r = await cli(['audit'], '{"msg":"listening"}\n');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /no audit lines found \(1 other lines skipped\)/);
  });

  const refused: [string, string[], RegExp][] = [
    ['an unknown format', ['audit', '-o', 'svg'], /-o must be table, json, dot, mermaid, got "svg"/],
    ['a file and pods at once', ['audit', '-f', 'x', '-n', 'agents'], /not both/],
    ['-l without a namespace', ['audit', '-l', 'app=x'], /audit -l needs -n NAMESPACE or -A/],
    ['a bad --since', ['audit', '-n', 'agents', '--since', 'yesterday'], /--since must be a duration/],
    ['an argument', ['audit', 'agents'], /audit takes no arguments, got "agents"/],
    ['an audit option on another command', ['status', '-c', 'proxy'], /--container is an option of audit only/],
  ];
  for (const [name, args, message] of refused) {
    it(`refuses ${name} (exit 2)`, async () => {
      const r = await cli(args);
      assert.equal(r.code, 2);
      assert.match(r.stderr, message);
    });
  }

  it('a file that does not exist fails with its path', async () => {
    const r = await cli(['audit', '-f', '/nonexistent/proxy.log']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ENOENT.*\/nonexistent\/proxy\.log/);
  });
});
