// The audit stream for a Node agent: the same lines the identity proxy
// writes (src/audit/line.ts, through the same non-blocking writer), so
// `agent-identity audit` reads an SDK agent's file and the proxies' alike.
// Hand `record` to createHttpsServer's `requests.onDecision`. No metrics
// here: prom-client stays out of the SDK (docs/sdk.md, "What it loads");
// an agent that wants them counts in its own onDecision.
import { auditLine } from '../audit/line.ts';
import type { AuditRecord } from '../audit/record.ts';
import { AuditSink, type DropReason } from '../audit/sink.ts';

export interface AuditLogOptions {
  /** Bytes that may wait to be written before lines are dropped (default 1 MiB). */
  maxBufferedBytes?: number;
  /** A write failed (a full disk, a closed pipe); called once per failure streak. Default: ignored (counted in `dropped`). */
  onWriteError?: (err: Error) => void;
}

export interface AuditLog {
  /** One decision, one line; never blocks, never throws (pass it as `requests.onDecision`). */
  record(r: AuditRecord): void;
  /** Lines not written, by reason, since the log was opened. */
  readonly dropped: Readonly<Record<DropReason, number>>;
  /** Writes what is queued (at most 5 s), then closes the file. */
  close(): Promise<void>;
}

/**
 * Opens `path` for appending (`-` for stdout). A path that cannot be opened
 * throws here, at start-up, naming it; afterwards nothing throws.
 */
export function openAuditLog(path: string, opts: AuditLogOptions = {}): AuditLog {
  const dropped: Record<DropReason, number> = { buffer_full: 0, write_error: 0 };
  const sink = new AuditSink(path === '-' ? { to: 'stdout' } : { to: 'file', path }, {
    maxBufferedBytes: opts.maxBufferedBytes,
    onDrop: (lines, reason) => { dropped[reason] += lines; },
    onWriteError: opts.onWriteError ?? (() => undefined),
  });
  return {
    record: (r) => sink.write(auditLine(r)),
    dropped,
    close: () => sink.close(),
  };
}
