// Calls repeated at a steady pace while something changes underneath them (a
// renewal, a root rotation), counted: the demo prints the tallies, tests
// assert that none failed.

export interface Tally {
  ok: number;
  failed: string[];
}

/**
 * Calls `fn` every `intervalMs` until stop(), one call at a time. A call
 * fails when it throws, or when its answer does not start with `expect`.
 */
export function repeatCalls(fn: () => Promise<string>, opts: { intervalMs?: number; expect?: string } = {}): { tally: Tally; stop(): Promise<void> } {
  const { intervalMs = 250, expect = 'hello' } = opts;
  const tally: Tally = { ok: 0, failed: [] };
  let on = true;
  const done = (async () => {
    while (on) {
      const at = new Date().toISOString();
      await fn().then(
        (r) => (r.startsWith(expect) ? tally.ok++ : tally.failed.push(`${at}: ${r === '' ? 'empty reply' : `reply "${r.slice(0, 80)}"`}`)),
        (e: Error) => tally.failed.push(`${at}: ${e.message}`));
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return { tally, stop: async () => { on = false; await done; } };
}

export const tallyLine = (t: Tally) => `${t.ok} calls, ${t.failed.length} failed${t.failed.length ? `: ${t.failed.slice(0, 3).join('; ')}` : ''}`;
