// An agent that serves its API over mutual TLS and calls a peer agent, with
// the identity the operator mounted into its pod. Run from a checkout with
// `node examples/sdk/agent.ts`; in your own project install the package (README,
// "The SDK") and import from 'agent-identity-operator/sdk' instead of the relative
// path, as test/integration/sdk-pack.test.ts does with this file.
//
//   AGENT_IDENTITY_DIR  the mounted files (the webhook sets it; default /var/run/agentidentity)
//   PORT                where to serve (default 8443)
//   PEER_URL            e.g. https://auditor.agents.svc:8443/
//   PEER_SPIFFE_ID      who must answer at PEER_URL, e.g. spiffe://cluster.local/ns/agents/agent/auditor
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { createHttpsServer, httpsAgent, loadIdentity, type PeerRefusedError, peerIdentity } from '../../src/sdk/index.ts';

const identity = await loadIdentity();
console.log(`running as ${identity.spiffeID}, certificate ${identity.svid.serialNumber}, policy ${identity.policy.mode}`);
identity.on('update', (i) => console.log(`renewed: now presenting certificate ${i.svid.serialNumber}`));
identity.on('reloadError', (err) => console.error(`mounted files unusable, keeping the current identity: ${err.message}`));

// Inbound: only peers that policy.json allows ever reach this handler.
const server = createHttpsServer(identity, {}, (req, res) => {
  const caller = peerIdentity(req.socket as TLSSocket)!;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ to: identity.spiffeID, from: caller.spiffeID.toString(), allowedBy: caller.rule }));
});
server.on('refused', (err: PeerRefusedError) => console.warn(`refused a caller: ${err.message}`));
server.listen(Number(process.env.PORT ?? 8443), () => console.log(`serving on :${(server.address() as { port: number }).port}`));

// Outbound: every new connection presents the current certificate and
// insists the server is PEER_SPIFFE_ID, whatever its DNS name.
const { PEER_URL, PEER_SPIFFE_ID } = process.env;
if (PEER_URL && PEER_SPIFFE_ID) {
  const agent = httpsAgent(identity, { authorize: PEER_SPIFFE_ID, keepAlive: true });
  https
    .get(PEER_URL, { agent }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => console.log(`peer answered ${res.statusCode}: ${body}`));
    })
    .on('error', (err) => console.error(`calling ${PEER_SPIFFE_ID} failed: ${err.message}`));
}
