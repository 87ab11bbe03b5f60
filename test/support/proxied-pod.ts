// A pod with an identity proxy, run as processes on this host (for `make demo`
// and the tests): the webhook mutates a Pod the caller builds
// (src/webhook/mutate.ts, the same code the admission server runs), and this
// runs what that Pod says.
//   - the native sidecar → `agent-identity proxy` with the sidecar's own args
//     and env (src/webhook/sidecar.ts proxyArgs), its identity mount path
//     moved to a directory on this host that test/support/kubelet.ts fills;
//   - the agent container → the Python agent with exactly the container's env
//     (HTTP_PROXY, HOST, … and the pod author's PORT), and nothing of the
//     identity: no files, no variables.
// On this host there is no pod network and no cluster DNS, so two flags a pod
// does not need are added (hostFlags, for the caller to show apart): the
// inbound listener on 127.0.0.1 instead of the pod IP, and --resolve for the
// agents' Service names.
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AgentIdentity } from '../../src/api/types.ts';
import { injectIdentity } from '../../src/webhook/mutate.ts';
import type { Container, EnvVar, Pod } from '../../src/webhook/pod.ts';
import { OUTBOUND_PORT, PROXY_CONTAINER, type ProxySidecarConfig } from '../../src/webhook/sidecar.ts';
import { applyPatch } from '../unit/webhook/fixtures.ts';
import { startProxyProcess, type ProxyProcess } from './proxy.ts';
import { PeerProcess, type PeerEvent } from './sdk-process.ts';

const PYTHON_AGENT = new URL('../../examples/python/agent.py', import.meta.url).pathname;

/** What the cluster admin would set in the chart values; here the checkout runs, so the image is never pulled. */
export const SIDECAR: ProxySidecarConfig = { image: 'agent-identity-operator:dev', imagePullPolicy: 'IfNotPresent', resources: {} };

/** A port free on 127.0.0.1 right now: spec.proxy needs fixed ports, and on one host they must not clash. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

/** The pod as the webhook would admit it, or its refusal message as an error. */
export function mutatedPod(bare: Pod, identity: AgentIdentity): Pod {
  const injection = injectIdentity(bare, identity, { proxy: SIDECAR });
  if (injection.refusal) throw new Error(`the webhook would refuse ${bare.metadata?.name}: ${injection.refusal.message}`);
  return applyPatch(bare, injection.patch) as Pod;
}

export interface ProxiedPod {
  sidecar: Container;
  agent: Container;
  /** The flags only this host needs (see the header). */
  hostFlags: string[];
  proxy: ProxyProcess;
  python: PeerProcess;
  /** Tells the Python agent to call `url` (a line on its stdin) and waits for its answer. */
  call(url: string): Promise<{ status: number; body: string }>;
  /** Tells the Python agent to run an MCP session with the tools server at `url` (examples/python/agent.py's `mcp URL`). */
  mcp(url: string): Promise<PeerEvent>;
  stop(): Promise<void>;
}

const envOf = (c: Container): Record<string, string> => Object.fromEntries((c.env ?? []).map((e: EnvVar) => [e.name, e.value ?? '']));

/**
 * Runs the mutated pod's proxy and Python agent. `identityDir` is where the
 * identity is "mounted" on this host (for the sidecar only); `hosts` are the
 * Service names the outbound proxy may be asked for. `outboundPort` moves the
 * fixed outbound port (15001), in the sidecar's args and the agent's
 * HTTP_PROXY alike, for tests that share the host with other runs; without
 * it, both are exactly what the webhook wrote.
 */
export async function runProxiedPod(pod: Pod, identityDir: string, hosts: string[], opts: { outboundPort?: number } = {}): Promise<ProxiedPod> {
  const sidecar = pod.spec.initContainers?.find((c) => c.name === PROXY_CONTAINER);
  const agent = pod.spec.containers[0];
  if (!sidecar || !agent) throw new Error(`pod ${pod.metadata?.name} has no ${PROXY_CONTAINER} sidecar or no agent container`);
  const mountPath = sidecar.volumeMounts![0]!.mountPath;
  const port = opts.outboundPort ?? OUTBOUND_PORT;
  const movePort = (s: string) => s.replace(`--outbound-port=${OUTBOUND_PORT}`, `--outbound-port=${port}`).replace(`127.0.0.1:${OUTBOUND_PORT}`, `127.0.0.1:${port}`);
  const here = (s: string) => movePort(s.split(mountPath).join(identityDir));
  const [command, ...args] = (sidecar.args as string[]).map(here);
  if (command !== 'proxy') throw new Error(`the sidecar runs "${command}", not the proxy`);
  const hostFlags = ['--inbound-address=127.0.0.1', ...hosts.map((h) => `--resolve=${h}=127.0.0.1`)];
  // Each process gets its container's env and PATH only (node needs nothing else; PATH finds python3).
  const envHere = (c: Container) => ({ PATH: process.env.PATH, ...Object.fromEntries(Object.entries(envOf(c)).map(([k, v]) => [k, here(v)])) });
  const proxy = await startProxyProcess([...args, ...hostFlags], envHere(sidecar));
  const python = new PeerProcess([PYTHON_AGENT], { command: 'python3', env: envHere(agent) });
  const spawnFailed = once(python.child, 'error').then(([e]) => { throw new Error(`cannot run the Python agent (python3 on PATH): ${(e as Error).message}`); });
  await Promise.race([python.waitFor('listening'), spawnFailed]).catch(async (e: unknown) => { await proxy.process.stop(); throw e; });
  let n = 0;
  return {
    sidecar, agent, hostFlags, proxy, python,
    async call(url) {
      // A query per call, so that each answer is matched to its own request.
      const u = `${url}${url.includes('?') ? '&' : '?'}call=${++n}`;
      python.send(u);
      const e = await python.waitFor('response', (x) => x.url === u);
      return { status: e.status as number, body: String(e.body).trim() };
    },
    async mcp(url) {
      python.send(`mcp ${url}`);
      return python.waitFor('mcp', (x) => x.url === url);
    },
    stop: async () => { await python.stop(); await proxy.process.stop(); },
  };
}
