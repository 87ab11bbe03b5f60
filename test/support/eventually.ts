// The one way a test waits: on the condition itself, polled, never a fixed sleep.
// Apart from operator.ts so that unit tests can use it without loading the operator.

/** Polls until fn returns a truthy value; the last error or value is in the failure message. */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const end = Date.now() + (opts.timeoutMs ?? 30_000);
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
  throw new Error(`timed out waiting for ${opts.what ?? 'condition'}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}
