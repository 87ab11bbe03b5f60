// The audit stream on stdout, in a child process whose stdout is a pipe (as a
// container's is): audit lines and the proxy's own log lines never split
// each other; and a reader that stops reading cannot keep the process from
// exiting (close() gives up after its bound and counts what it could not write).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';

const SINK = new URL('../../../src/audit/sink.ts', import.meta.url).href;

function child(script: string, read: boolean) {
  const p = spawn(process.execPath, ['--input-type=module', '-e', `import { AuditSink } from '${SINK}';\n${script}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  if (read) p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  return { p, out: () => stdout, err: () => stderr };
}

describe('AuditSink on stdout', () => {
  it('audit lines and the process\'s own synchronous log lines arrive whole, none lost', async () => {
    const c = child(`
      const drops = { n: 0 };
      const sink = new AuditSink({ to: 'stdout' }, { onDrop: (n) => { drops.n += n; }, onWriteError: () => {} });
      const pad = 'x'.repeat(300);
      for (let i = 0; i < 2000; i++) {
        sink.write(JSON.stringify({ msg: 'audit', i, pad }) + '\\n');
        if (i % 10 === 0) process.stdout.write(JSON.stringify({ msg: 'log', i, pad }) + '\\n');
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      await sink.close();
      process.stderr.write('dropped ' + drops.n);
    `, true);
    const [code] = await once(c.p, 'close');
    assert.equal(code, 0, c.err());
    assert.equal(c.err(), 'dropped 0');
    const lines = c.out().trimEnd().split('\n').map((l) => JSON.parse(l) as { msg: string; i: number });
    assert.equal(lines.filter((l) => l.msg === 'audit').length, 2000);
    assert.equal(lines.filter((l) => l.msg === 'log').length, 200);
    const audit = lines.filter((l) => l.msg === 'audit').map((l) => l.i);
    assert.deepEqual(audit, [...audit].sort((a, b) => a - b), 'audit lines in order');
  });

  // The thread pool's write(2) stays blocked until the reader reads or goes away, and a process cannot exit
  // before its thread pool does: so the reader goes away once close() has answered.
  it('a reader that stopped reading: close() gives up after its bound and counts the rest', async () => {
    const c = child(`
      const drops = { n: 0 };
      const sink = new AuditSink({ to: 'stdout' }, { onDrop: (n) => { drops.n += n; }, onWriteError: () => {} });
      for (let i = 0; i < 4000; i++) sink.write(JSON.stringify({ msg: 'audit', i, pad: 'x'.repeat(200) }) + '\\n');
      const t0 = Date.now();
      await sink.close(300);
      process.stderr.write('closed after ' + (Date.now() - t0) + ' ms, dropped ' + drops.n);
      process.exit(0);
    `, false);
    while (!/closed after/.test(c.err())) await once(c.p.stderr, 'data');
    c.p.stdout.destroy();
    const [code] = await once(c.p, 'close');
    assert.equal(code, 0, c.err());
    const m = /closed after (\d+) ms, dropped (\d+)/.exec(c.err());
    assert.ok(m, c.err());
    assert.ok(Number(m[1]) >= 290, 'it waited for the writes first');
    assert.ok(Number(m[2]) > 0, 'what the pipe did not take is counted');
  });
});
