// Does key generation stall the event loop? Generates keys through the
// operator's own generateKeyPair while perf_hooks samples event-loop delay.
// Usage: node scripts/profile-keygen.ts [RSA|ECDSA] [size] [count] [concurrency]
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { generateKeyPair } from '../src/pki/keys.ts';
import type { KeyAlgorithm } from '../src/api/types.ts';

const [algorithm = 'RSA', size = '4096', count = '8', concurrency = '2'] = process.argv.slice(2);
const h = monitorEventLoopDelay({ resolution: 1 });
h.enable();
const started = performance.now();
const cpu = process.cpuUsage();
let next = 0;
const worker = async () => { while (next++ < Number(count)) await generateKeyPair(algorithm as KeyAlgorithm, Number(size)); };
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
h.disable();
const ms = (ns: number) => (ns / 1e6).toFixed(1);
const used = process.cpuUsage(cpu);
console.log(JSON.stringify({
  algorithm, size: Number(size), count: Number(count), concurrency: Number(concurrency),
  wallMs: Math.round(performance.now() - started), processCpuMs: Math.round((used.user + used.system) / 1000),
  loopDelayMs: { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) },
}));
