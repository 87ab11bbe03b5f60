// What `make bench-proxy` and scripts/proxy-rss.ts stand up on loopback: a
// trust domain with two agents (caller → callee) whose identity files are
// laid out as the kubelet mounts them, the app they talk to, the identity
// proxies as the sidecar runs them (the compiled dist, as in the image), and
// ghostunnel as the reference. No Kubernetes: test/support/sdk-pki.ts makes
// the files.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { PolicyDocument } from '../src/api/documents.ts';
import { agentID, fileSet, type IssuedIdentity, makeTrustDomain, policyFor, swapMountedDir, writeMountedDir } from '../test/support/sdk-pki.ts';
import { PeerProcess } from '../test/support/sdk-process.ts';
import { BODY, type Target } from './bench-proxy-load.ts';
import { cpuTicks, rssMiB } from './bench-stats.ts';

export const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const APP = join(ROOT, 'scripts', 'bench-proxy-app.ts');
// The name the caller's policy.json maps to the callee, as the operator writes egress.destinations.
export const CALLEE_HOST = 'callee.agents.svc';
export const CALLER_ID = agentID('caller');
export const CALLEE_ID = agentID('callee');

/** One generation of the trust domain: a Root, an Intermediate under it, and a Leaf per agent. */
interface Generation { rootPem: string; caller: IssuedIdentity; callee: IssuedIdentity }

async function generation(): Promise<Generation> {
  const td = await makeTrustDomain();
  return { rootPem: td.bundlePem, caller: await td.issue('caller'), callee: await td.issue('callee', 'agents', [CALLEE_HOST]) };
}

/** The callee admits its trust domain; the caller may call it by CALLEE_HOST (egress as the operator compiles it). */
function policies(g: Generation): { caller: PolicyDocument; callee: PolicyDocument } {
  const caller = { ...policyFor(g.caller), egress: { mode: 'TrustDomain' as const, allow: [], destinations: [{ host: CALLEE_HOST, spiffeID: CALLEE_ID }] } };
  return { caller, callee: policyFor(g.callee) };
}

export interface Rig {
  dir: string;
  callerDir: string;
  calleeDir: string;
  /** ghostunnel's copies (plain files: it reloads on SIGHUP, not on a symlink swap). */
  ghost: { callerCert: string; callerKey: string; calleeCert: string; calleeKey: string; bundle: string };
  /** Rewrites both agents' files as a root rotation does; resolves after the last step. `pauseMs` between steps. */
  rotateRoot(pauseMs: number, onStep?: (step: string) => void): Promise<void>;
}

export async function makeRig(dir: string): Promise<Rig> {
  const callerDir = join(dir, 'caller');
  const calleeDir = join(dir, 'callee');
  let g = await generation();
  const write = async (how: typeof writeMountedDir, gen: Generation, bundlePem: string) => {
    const p = policies(gen);
    await how(callerDir, fileSet(gen.caller, bundlePem, p.caller));
    await how(calleeDir, fileSet(gen.callee, bundlePem, p.callee));
  };
  await mkdir(callerDir, { recursive: true });
  await mkdir(calleeDir, { recursive: true });
  await write(writeMountedDir, g, g.rootPem);
  const ghostDir = join(dir, 'ghostunnel');
  await mkdir(ghostDir, { recursive: true });
  const ghost = {
    callerCert: join(ghostDir, 'caller.crt'), callerKey: join(ghostDir, 'caller.key'),
    calleeCert: join(ghostDir, 'callee.crt'), calleeKey: join(ghostDir, 'callee.key'), bundle: join(ghostDir, 'ca.crt'),
  };
  await writeFile(ghost.callerCert, g.caller.certificatePem);
  await writeFile(ghost.callerKey, g.caller.privateKeyPem);
  await writeFile(ghost.calleeCert, g.callee.certificatePem);
  await writeFile(ghost.calleeKey, g.callee.privateKeyPem);
  await writeFile(ghost.bundle, g.rootPem);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  return {
    dir, callerDir, calleeDir, ghost,
    // As the operator rotates a root: the new root joins the bundle, then the Leaves
    // move under it, then the old root leaves the bundle. Each step is one kubelet swap.
    async rotateRoot(pauseMs, onStep = () => undefined) {
      const next = await generation();
      await write(swapMountedDir, g, `${g.rootPem}${next.rootPem}`);
      onStep('bundle holds both roots');
      await sleep(pauseMs);
      await write(swapMountedDir, next, `${g.rootPem}${next.rootPem}`);
      onStep('leaves issued under the new root');
      await sleep(pauseMs);
      await write(swapMountedDir, next, next.rootPem);
      onStep('old root removed');
      g = next;
    },
  };
}

/** A child process, its pid for /proc readings; `process` when it prints JSON lines. */
export interface Running { process?: PeerProcess; pid: number; stop(): Promise<void> }

const running = (p: PeerProcess): Running => ({ process: p, pid: p.child.pid!, stop: () => p.stop() });

/** The app: 1 KB answers to any request, plain HTTP on 127.0.0.1, or (sdk) behind the SDK's own mTLS server. */
export async function startApp(kind: 'plain' | 'sdk', identityDir?: string): Promise<Running & { port: number }> {
  const p = new PeerProcess([APP, kind, ...(identityDir ? [identityDir] : [])], { command: process.execPath });
  const { port } = await p.waitFor('listening');
  return { ...running(p), port: port as number };
}

/** `agent-identity proxy` from dist (what the image runs), with `nodeFlags` before the script (what the sidecar's command would set). */
export async function startProxy(args: string[], nodeFlags: readonly string[] = []): Promise<Running & { inboundPort?: number; outboundPort?: number }> {
  const p = new PeerProcess([...nodeFlags, CLI, 'proxy', ...args], { command: process.execPath });
  const listening = await p.waitFor('listening');
  const port = (side: unknown) => (side as { port: number } | undefined)?.port;
  return { ...running(p), inboundPort: port(listening.inbound), outboundPort: port(listening.outbound) };
}

/** The pair on the path app → outbound proxy (caller's pod) → inbound proxy (callee's pod) → app. */
export async function startProxyPair(rig: Rig, appPort: number, nodeFlags: readonly string[] = []) {
  const inbound = await startProxy([`--identity-dir=${rig.calleeDir}`, '--inbound-address=127.0.0.1', '--inbound-port=0', `--app-port=${appPort}`], nodeFlags);
  const outbound = await startProxy([`--identity-dir=${rig.callerDir}`, '--outbound-port=0', `--resolve=${CALLEE_HOST}=127.0.0.1`], nodeFlags);
  return { inbound, outbound, stop: () => Promise.all([inbound.stop(), outbound.stop()]) };
}

/** Linux reports /proc/<pid>/stat times in USER_HZ, 100 on every mainstream architecture. */
const CLK_TCK = 100;
export const cpuSeconds = (pid: number) => cpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) / CLK_TCK;
export const rssOf = (pid: number) => rssMiB(readFileSync(`/proc/${pid}/status`, 'utf8'));

/** The highest RSS of each pid, sampled every `everyMs` until stop(). */
export function sampleRss(pids: readonly number[], everyMs = 200) {
  const max = pids.map(() => 0);
  const sample = () => pids.forEach((pid, i) => {
    try {
      max[i] = Math.max(max[i]!, rssOf(pid));
    } catch { /* exited: keep the last reading */ }
  });
  sample();
  const timer = setInterval(sample, everyMs);
  return { stop: () => { clearInterval(timer); sample(); return max; } };
}

const POOL = 256;
const POST = { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(BODY.length) } };

/** Plain HTTP to 127.0.0.1:port (the app itself, or a ghostunnel client in front of it). */
export function plainTarget(name: string, port: number): Target {
  return { name, secure: false, options: { ...POST, host: '127.0.0.1', port, path: '/', agent: new http.Agent({ keepAlive: true, maxSockets: POOL }) } };
}

/** As an agent calls a peer through HTTP_PROXY: the absolute URL to the outbound proxy. */
export function forwardProxyTarget(name: string, proxyPort: number, host: string, port: number): Target {
  const headers = { ...POST.headers, host: `${host}:${port}` };
  return { name, secure: false, options: { ...POST, headers, host: '127.0.0.1', port: proxyPort, path: `http://${host}:${port}/`, agent: new http.Agent({ keepAlive: true, maxSockets: POOL }) } };
}
