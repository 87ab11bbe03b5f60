// The audit stream's writer: lines are queued and written by the thread pool
// (fs.write), so the request path never waits on a disk or on whoever reads
// the container's stdout. process.stdout.write would not do: on Linux it is
// synchronous for pipes, which is what a container's stdout is.
//
// Bounded: past `maxBufferedBytes` waiting, a line is dropped and counted,
// never queued without limit, never allowed to stall or crash the proxy. A
// write error (a full disk, a closed pipe) drops the lines of that write and
// the next ones are tried again: the disk may have room a minute later.
import { closeSync, openSync, write } from 'node:fs';

export type DropReason = 'buffer_full' | 'write_error';

/** Where the stream goes: stdout (`-`), a file (appended to), or nowhere (`off`). */
export type AuditLog = { to: 'stdout' } | { to: 'file'; path: string } | { to: 'off' };

export interface SinkOptions {
  /** Bytes that may wait to be written; default 1 MiB (some thousands of lines). */
  maxBufferedBytes?: number;
  onDrop(lines: number, reason: DropReason): void;
  /** A write failed; called at most once per failure streak, so a dead disk does not flood the log. */
  onWriteError(err: Error): void;
}

export const DEFAULT_MAX_BUFFERED_BYTES = 1 << 20;
// One write(2) of at most PIPE_BUF bytes on a pipe is atomic, so a batch never
// interleaves with the proxy's own log lines mid-line on the same stdout. A
// file is the audit's alone: larger batches, fewer trips through the thread pool.
const PIPE_BUF = 4096;
const FILE_BATCH = 64 * 1024;
// EAGAIN: a non-blocking stdout that is full; try again shortly.
const RETRY_MS = 10;
// Within the proxy's drain (20 s) after SIGTERM.
const CLOSE_TIMEOUT_MS = 5_000;

export class AuditSink {
  private readonly fd: number;
  private readonly ownsFd: boolean;
  private readonly max: number;
  private readonly batch: number;
  private readonly opts: SinkOptions;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private writing = false;
  private failing = false;
  private closed = false;
  private idle: Array<() => void> = [];

  /** Opens the destination now, so a path that cannot be written is refused at start-up (the error names it). */
  constructor(log: { to: 'stdout' } | { to: 'file'; path: string }, opts: SinkOptions) {
    this.fd = log.to === 'stdout' ? 1 : openSync(log.path, 'a', 0o640);
    this.ownsFd = log.to === 'file';
    this.batch = log.to === 'stdout' ? PIPE_BUF : FILE_BATCH;
    this.max = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.opts = opts;
  }

  /** Queues one line (newline-terminated); never blocks, never throws. */
  write(line: string): void {
    const buf = Buffer.from(line);
    if (this.closed || this.queuedBytes + buf.length > this.max) {
      this.opts.onDrop(1, 'buffer_full');
      return;
    }
    this.queue.push(buf);
    this.queuedBytes += buf.length;
    if (!this.writing) this.pump();
  }

  /** Lines waiting to be written, in bytes (for tests and the drain). */
  get buffered(): number {
    return this.queuedBytes;
  }

  /**
   * Writes what is queued, then closes a file it opened. Lines written after this are dropped. Bounded:
   * a reader that stopped reading stdout must not hold the drain; what is still queued after
   * `timeoutMs` is counted as dropped. (The write in flight still holds the process until the reader
   * reads or goes away, as the proxy's own synchronous log writes would.)
   */
  async close(timeoutMs = CLOSE_TIMEOUT_MS): Promise<void> {
    this.closed = true;
    if (this.writing) {
      let timer: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        new Promise<boolean>((r) => this.idle.push(() => r(true))),
        new Promise<boolean>((r) => { timer = setTimeout(() => r(false), timeoutMs); }),
      ]);
      clearTimeout(timer);
      if (!drained) {
        this.opts.onDrop(this.queue.length, 'write_error');
        this.queue = [];
        return;
      }
    }
    if (this.ownsFd) closeSync(this.fd);
  }

  private pump(): void {
    // A batch: whole lines up to the batch size, or one longer line alone.
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && (n === 0 || bytes + this.queue[n]!.length <= this.batch)) bytes += this.queue[n++]!.length;
    const batch = this.queue.splice(0, n);
    this.writing = true;
    this.writeAll(Buffer.concat(batch, bytes), 0, (err) => {
      this.queuedBytes -= bytes;
      if (err) {
        this.opts.onDrop(n, 'write_error');
        if (!this.failing) this.opts.onWriteError(err);
      }
      this.failing = err !== undefined;
      if (this.queue.length) return this.pump();
      this.writing = false;
      for (const r of this.idle.splice(0)) r();
    });
  }

  private writeAll(buf: Buffer, offset: number, done: (err?: Error) => void): void {
    write(this.fd, buf, offset, buf.length - offset, null, (err, written) => {
      if (err && (err as NodeJS.ErrnoException).code === 'EAGAIN') return void setTimeout(() => this.writeAll(buf, offset, done), RETRY_MS);
      if (err) return done(err);
      if (offset + written < buf.length) return this.writeAll(buf, offset + written, done);
      done();
    });
  }
}
