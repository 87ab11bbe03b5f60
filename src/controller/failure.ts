// A reconcile failure with a reason a person can act on. The message must be
// safe to put in a status condition, an event and a log line: it is built
// from our own words and API Status messages, never from key material.
export class ReconcileFailure extends Error {
  readonly reason: string;
  /** Retry soon with backoff (true), or wait for a change to the inputs (false). */
  readonly retry: boolean;
  constructor(reason: string, message: string, opts: { retry?: boolean } = {}) {
    super(message);
    this.name = 'ReconcileFailure';
    this.reason = reason;
    this.retry = opts.retry ?? true;
  }
}

export function failureOf(err: unknown, fallbackReason: string): ReconcileFailure {
  if (err instanceof ReconcileFailure) return err;
  const message = err instanceof Error ? err.message : String(err);
  const reason = (err as { reason?: unknown })?.reason;
  return new ReconcileFailure(typeof reason === 'string' && /^[A-Z][A-Za-z]+$/.test(reason) ? reason : fallbackReason, message);
}
