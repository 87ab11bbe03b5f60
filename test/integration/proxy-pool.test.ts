// The outbound proxy's pool to one peer is capped (--max-connections-per-peer):
// a burst of requests waits for a free mTLS connection instead of opening one
// each, which made the proxies' latency and memory run away under load
// (docs/performance.md, "the connection storm"). No Kubernetes needed.
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { createHttpsServer, loadIdentity, type AgentHttpsServer, type Identity } from '../../src/sdk/index.ts';
import { startProxyProcess, type ProxyProcess } from '../support/proxy.ts';
import { fileSet, makeTrustDomain, policyFor, writeMountedDir } from '../support/sdk-pki.ts';

const CAP = 4;
const BURST = 24;
const HOST = 'planner.agents.svc';

let base: string;
let plannerIdentity: Identity;
let planner: AgentHttpsServer;
let caller: ProxyProcess;
let connections = 0;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'proxy-pool-'));
  const td = await makeTrustDomain();
  const [callerID, plannerID] = await Promise.all([td.issue('caller'), td.issue('planner')]);
  await writeMountedDir(join(base, 'planner'), fileSet(plannerID, td.bundlePem, policyFor(plannerID)));
  await writeMountedDir(join(base, 'caller'), fileSet(callerID, td.bundlePem, {
    ...policyFor(callerID),
    egress: { mode: 'TrustDomain', allow: [], destinations: [{ host: HOST, spiffeID: plannerID.spiffeID }] },
  }));
  plannerIdentity = await loadIdentity({ dir: join(base, 'planner'), watch: false });
  // Each answer takes a while, so the burst's requests overlap and would each want a connection.
  planner = createHttpsServer(plannerIdentity, {}, (_req, res) => { setTimeout(() => res.end('ok'), 100); });
  planner.on('secureConnection', () => { connections++; });
  await new Promise<void>((resolve) => planner.listen(0, '127.0.0.1', resolve));
  caller = await startProxyProcess(['--identity-dir', join(base, 'caller'), '--outbound-port', '0', '--resolve', `${HOST}=127.0.0.1`, '--max-connections-per-peer', String(CAP)]);
});

after(async () => {
  await caller?.process.stop();
  planner?.close();
  planner?.closeAllConnections();
  plannerIdentity?.close();
  await rm(base, { recursive: true, force: true });
});

/** One plain-HTTP request through the outbound proxy, as an agent with HTTP_PROXY makes it. */
function viaProxy(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: caller.outboundPort, path: url, headers: { host: new URL(url).host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject).end();
  });
}

test(`a burst of ${BURST} calls to one peer shares at most ${CAP} mTLS connections, and every call is answered`, async () => {
  const port = (planner.address() as AddressInfo).port;
  const answers = await Promise.all(Array.from({ length: BURST }, () => viaProxy(`http://${HOST}:${port}/`)));
  assert.deepEqual(answers.map((a) => `${a.status} ${a.body}`), Array.from({ length: BURST }, () => '200 ok'));
  assert.ok(connections >= 1 && connections <= CAP, `${connections} connections opened to the peer for ${BURST} overlapping calls (cap ${CAP})`);
});
