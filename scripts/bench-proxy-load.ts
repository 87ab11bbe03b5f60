// The load of `make bench-proxy`: 1 KB POSTs answered with 1 KB, over
// keep-alive connections, either at a fixed rate whatever the answers do
// (open loop: queueing shows as latency) or as fast as N callers in a row
// can go (closed loop: the maximum). Every loop is bounded by its duration
// and by a cap on requests in flight.
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';

export const BODY = Buffer.alloc(1024, 'y');
const REQUEST_TIMEOUT_MS = 10_000;
// Past this many unanswered requests an open loop counts new ones as failed instead of piling them up.
const MAX_IN_FLIGHT = 2000;

/** How one path is called: the options of each request (its agent holds the keep-alive pool). */
export interface Target {
  name: string;
  secure: boolean;
  options: http.RequestOptions;
  /** The request body; default BODY (1 KB). */
  body?: Buffer;
}

export interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  /** Of the answered requests, from the first byte written to the last byte read. */
  latenciesMs: Float64Array;
  seconds: number;
  /** The first failures' messages, by message. */
  errors: Record<string, number>;
}

/** One request; resolves with its latency in ms, rejects unless a 200 with 1 KB came back. */
export function call(target: Target): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = (target.secure ? https : http).request(target.options, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => (res.statusCode === 200 && bytes === BODY.length ? resolve(performance.now() - started) : reject(new Error(`status ${res.statusCode}, ${bytes} bytes`))));
      res.on('error', reject);
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', reject);
    req.end(target.body ?? BODY);
  });
}

function collector() {
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let sent = 0, failed = 0;
  const fail = (err: unknown) => {
    failed++;
    const m = (err as Error).message ?? String(err);
    if (Object.keys(errors).length < 10 || m in errors) errors[m] = (errors[m] ?? 0) + 1;
  };
  const track = (p: Promise<number>) => {
    sent++;
    return p.then((ms) => void latencies.push(ms), fail);
  };
  const result = (seconds: number): LoadResult => ({ sent, ok: latencies.length, failed, latenciesMs: Float64Array.from(latencies), seconds, errors });
  return { track, fail: () => { sent++; failed++; errors['too many in flight'] = (errors['too many in flight'] ?? 0) + 1; }, result };
}

/**
 * `rate` requests/s for `seconds`, sent on a 1 ms tick whatever the answers
 * do. Latency counts from when each request was written, so a late tick is
 * not counted against the path; the pacing keeps the rate.
 */
export async function openLoop(target: Target, rate: number, seconds: number): Promise<LoadResult> {
  const c = collector();
  const pending = new Set<Promise<void>>();
  const total = Math.round(rate * seconds);
  const t0 = performance.now();
  let i = 0;
  await new Promise<void>((done) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
      for (; i < due; i++) {
        if (pending.size >= MAX_IN_FLIGHT) {
          c.fail();
          continue;
        }
        const p = c.track(call(target)).finally(() => pending.delete(p));
        pending.add(p);
      }
      if (i >= total) done();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await Promise.all(pending);
  return c.result((performance.now() - t0) / 1000);
}

/** `concurrency` callers, each sending its next request when the last one is answered, for `seconds`. */
export async function closedLoop(target: Target, concurrency: number, seconds: number): Promise<LoadResult> {
  const c = collector();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const caller = async () => {
    while (performance.now() < end) await c.track(call(target));
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  return c.result((performance.now() - t0) / 1000);
}
