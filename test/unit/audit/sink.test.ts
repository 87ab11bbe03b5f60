import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AuditSink, type DropReason } from '../../../src/audit/sink.ts';

function counting() {
  const drops: Record<DropReason, number> = { buffer_full: 0, write_error: 0 };
  const errors: Error[] = [];
  return { drops, errors, opts: { onDrop: (n: number, r: DropReason) => { drops[r] += n; }, onWriteError: (e: Error) => errors.push(e) } };
}

const lines = (n: number) => Array.from({ length: n }, (_, i) => `{"n":${i}}\n`);

describe('AuditSink', () => {
  it('appends every line, in order, to the file, and close() writes what is queued', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'audit-')), 'audit.log');
    const c = counting();
    const sink = new AuditSink({ to: 'file', path }, c.opts);
    for (const l of lines(5000)) sink.write(l);
    await sink.close();
    assert.equal(readFileSync(path, 'utf8'), lines(5000).join(''));
    assert.deepEqual(c.drops, { buffer_full: 0, write_error: 0 });
  });

  it('does not write on the caller\'s turn: lines wait in the buffer until the thread pool writes them', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'audit-')), 'audit.log');
    const sink = new AuditSink({ to: 'file', path }, counting().opts);
    for (const l of lines(100)) sink.write(l);
    // The write callbacks run on a later turn of the event loop: on this one, every line is still owed.
    assert.equal(sink.buffered, lines(100).join('').length, 'queued, not written synchronously');
    await sink.close();
    assert.equal(sink.buffered, 0);
  });

  it('past the bound, drops lines and counts them instead of queuing without limit', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'audit-')), 'audit.log');
    const c = counting();
    const sink = new AuditSink({ to: 'file', path }, { ...c.opts, maxBufferedBytes: 1000 });
    const all = lines(1000);
    for (const l of all) sink.write(l);
    assert.ok(sink.buffered <= 1000);
    await sink.close();
    const written = readFileSync(path, 'utf8').split('\n').filter(Boolean).length;
    assert.ok(c.drops.buffer_full > 0);
    assert.equal(written + c.drops.buffer_full, all.length, 'every line is either written or counted');
  });

  it('a device that refuses writes (/dev/full) costs lines, counted, reported once per streak, and never throws', async () => {
    const c = counting();
    const sink = new AuditSink({ to: 'file', path: '/dev/full' }, c.opts);
    for (const l of lines(50)) sink.write(l);
    await sink.close();
    assert.equal(c.drops.write_error, 50);
    assert.equal(c.errors.length, 1);
    assert.match(c.errors[0]!.message, /ENOSPC/);
  });

  it('a file that cannot be opened throws at construction, naming the path', () => {
    assert.throws(() => new AuditSink({ to: 'file', path: '/nonexistent/dir/audit.log' }, counting().opts), /ENOENT.*\/nonexistent\/dir\/audit\.log/);
  });

  it('lines written after close() are dropped and counted', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'audit-')), 'audit.log');
    const c = counting();
    const sink = new AuditSink({ to: 'file', path }, c.opts);
    await sink.close();
    sink.write('{"late":true}\n');
    assert.equal(c.drops.buffer_full, 1);
  });
});
