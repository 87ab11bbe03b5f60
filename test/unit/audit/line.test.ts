import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { auditLine, MAX_FIELD_CHARS, parseAuditLine } from '../../../src/audit/line.ts';
import { decision } from './fixtures.ts';

describe('audit line', () => {
  it('one JSON line in the proxy log shape, read back as the same record', () => {
    const r = decision({ decision: 'deny', rule: null, tool: 'delete_all', reason: 'ToolNotAllowed' });
    const line = auditLine(r);
    assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'));
    const o = JSON.parse(line);
    assert.equal(o.msg, 'audit');
    assert.equal(o.level, 'info');
    assert.deepEqual(parseAuditLine(line), r);
  });

  it('drops the query string of the path (arguments, tokens)', () => {
    const line = auditLine(decision({ transport: 'http', path: '/search?q=secret&token=abc' }));
    assert.doesNotMatch(line, /secret|token=abc/);
    assert.equal(parseAuditLine(line)!.path, '/search');
  });

  it('caps a name the peer chose, and marks the cut', () => {
    const tool = 'x'.repeat(1_000_000);
    const line = auditLine(decision({ tool }));
    assert.ok(line.length < 2000, `line of ${line.length} chars`);
    assert.equal(parseAuditLine(line)!.tool, `${'x'.repeat(MAX_FIELD_CHARS)}…(1000000 chars)`);
  });

  it('keeps look-alike and control characters as they are, escaped, on one line', () => {
    const tool = 'dеlete_all\n\u2028{"msg":"audit"}'; // Cyrillic е
    const line = auditLine(decision({ tool }));
    assert.equal(line.split('\n').length, 2);
    assert.equal(parseAuditLine(line)!.tool, tool);
  });

  it('reads a line a log pipeline re-serialized with spaces', () => {
    const spaced = JSON.stringify(JSON.parse(auditLine(decision())), null, 1).replace(/\n/g, ' ');
    assert.deepEqual(parseAuditLine(spaced), decision());
  });

  it('reads a line behind a prefix (kubectl logs --prefix, a timestamp)', () => {
    const line = auditLine(decision()).trimEnd();
    assert.deepEqual(parseAuditLine(`[pod/tools-0/agent-identity-proxy] ${line}`), decision());
  });

  const others: [string, string][] = [
    ['a proxy log line', '{"time":"2026-12-07T10:00:00.000Z","level":"info","msg":"listening","inbound":{"port":8443}}'],
    ['not JSON', 'Traceback (most recent call last): "msg":"audit"'],
    ['a truncated line', auditLine(decision()).slice(0, 60)],
    ['a record with a bad decision', auditLine(decision()).replace('"allow"', '"maybe"')],
    ['a record without a peer', auditLine(decision()).replace(/"peer":"[^"]*",/, '')],
    ['a record with an unknown transport', auditLine(decision()).replace('"mcp"', '"grpc"')],
    ['an empty line', ''],
  ];
  for (const [name, line] of others) it(`skips ${name}`, () => assert.equal(parseAuditLine(line), undefined));
});
