// A real mutual-TLS handshake between two sets of PEM material, judged from
// the server's side (with TLS 1.3 the client finishes before the server has
// checked its certificate).
import { createServer, connect, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createRoot, loadCA } from '../../src/pki/ca.ts';
import { issueLeaf } from '../../src/pki/leaf.ts';
import { generateKeyPair, privateKeyToPem } from '../../src/pki/keys.ts';
import { SpiffeID } from '../../src/pki/spiffeid.ts';

export interface Material { cert?: string; key?: string; ca: string }
export interface HandshakeResult { authorized: boolean; peerSpiffeID?: string; error?: string }

export async function mtlsHandshake(server: Material, client: Material): Promise<HandshakeResult> {
  const srv = createServer({ cert: server.cert, key: server.key, ca: server.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' });
  const result = new Promise<HandshakeResult>((resolve) => {
    srv.on('secureConnection', (s: TLSSocket) => {
      s.on('error', () => undefined);
      const uri = s.getPeerCertificate().subjectaltname?.split(', ').find((n) => n.startsWith('URI:spiffe://'));
      resolve({ authorized: s.authorized, peerSpiffeID: uri?.slice(4) });
      s.end();
    });
    srv.on('tlsClientError', (err) => resolve({ authorized: false, error: err.message }));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  // SPIFFE peers are identified by URI SAN, not host name.
  const sock = connect({ host: '127.0.0.1', port, ca: client.ca, cert: client.cert, key: client.key, checkServerIdentity: () => undefined });
  sock.on('error', () => undefined);
  const timeout = new Promise<HandshakeResult>((r) => setTimeout(() => r({ authorized: false, error: 'timeout' }), 5000).unref());
  const out = await Promise.race([result, timeout]);
  sock.destroy();
  await new Promise((r) => srv.close(r));
  return out;
}

/** A client certificate from a CA the operator never heard of. */
export async function otherCAClient(): Promise<Material> {
  const now = new Date();
  const root = await createRoot({ trustDomain: 'cluster.local', algorithm: 'ECDSA', validityMs: 3600_000, now });
  const ca = await loadCA(root.certificatePem, root.privateKeyPem);
  const key = await generateKeyPair('ECDSA', 256);
  const leaf = await issueLeaf(ca, { spiffeID: SpiffeID.parse('spiffe://cluster.local/ns/agents/agent/stranger'), dnsNames: [], publicKey: key.publicKey, durationMs: 600_000, now });
  return { cert: leaf.certificatePem, key: await privateKeyToPem(key), ca: root.certificatePem };
}
