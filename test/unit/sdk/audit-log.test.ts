// openAuditLog: the SDK's audit file holds the proxy's lines, which
// `agent-identity audit` reads back as the same records.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { auditLine, parseAuditLine } from '../../../src/audit/line.ts';
import { openAuditLog } from '../../../src/sdk/index.ts';
import { decision } from '../audit/fixtures.ts';

describe('openAuditLog', () => {
  it('appends one proxy audit line per record, read back as the same record; close() writes what is queued', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sdk-audit-')), 'audit.log');
    const records = [decision(), decision({ tool: 'delete_all', decision: 'deny', rule: null, reason: 'ToolNotAllowed' }), decision({ transport: 'a2a', rpcMethod: 'tasks/cancel', tool: undefined })];
    const log = openAuditLog(path);
    for (const r of records) log.record(r);
    await log.close();
    const text = readFileSync(path, 'utf8');
    assert.equal(text, records.map(auditLine).join(''));
    assert.deepEqual(text.trimEnd().split('\n').map(parseAuditLine), records.map((r) => JSON.parse(JSON.stringify(r))));
    assert.deepEqual(log.dropped, { buffer_full: 0, write_error: 0 });
  });

  it('past its buffer, drops and counts instead of queuing without limit', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sdk-audit-')), 'audit.log');
    const log = openAuditLog(path, { maxBufferedBytes: auditLine(decision()).length * 2 });
    for (let i = 0; i < 10; i++) log.record(decision());
    assert.ok(log.dropped.buffer_full > 0);
    await log.close();
    assert.equal(readFileSync(path, 'utf8').split('\n').filter(Boolean).length, 10 - log.dropped.buffer_full);
  });

  it('a path that cannot be opened throws at once, naming it', () => {
    assert.throws(() => openAuditLog('/nonexistent-dir/audit.log'), /\/nonexistent-dir\/audit\.log/);
  });
});
