// Checking the certificate a peer presented, in a fixed order whose first
// failure names the refusal: a certificate at all, a chain to the current
// Bundle of the peer's own trust domain, a SPIFFE ID, the deny list, then the Authorizer.
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls';
import type { PolicyDocument } from '../api/documents.ts';
import { type Bundle, type BundleSet, chainsToRoots, serialNumberOf, type SpiffeID, spiffeIDOf, verifyChain, x509, type X509Certificate } from '../pki/index.ts';
import type { Authorizer } from './authorizer.ts';
import { PeerRefusedError } from './errors.ts';
import type { Identity } from './identity.ts';

/** Who is on the other end of an admitted connection, and the rule that let them in. */
export interface PeerIdentity {
  spiffeID: SpiffeID;
  /** e.g. "allow[0]: agent agents/orchestrator". */
  rule: string;
  serialNumber: string;
  /** The peer's Leaf first, then its issuers as node reported them. */
  certificates: X509Certificate[];
}

const admitted = new WeakMap<TLSSocket, PeerIdentity>();

/** The identity of the peer on a socket this SDK admitted; undefined for any other socket. */
export function peerIdentity(socket: TLSSocket): PeerIdentity | undefined {
  return admitted.get(socket);
}

/** Node links each certificate to its issuer, and a self-signed root to itself. */
export function peerChainOf(cert: PeerCertificate | DetailedPeerCertificate): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<PeerCertificate>();
  for (let c: PeerCertificate | undefined = cert; c?.raw && !seen.has(c); c = (c as DetailedPeerCertificate).issuerCertificate) {
    seen.add(c);
    chain.push(new x509.X509Certificate(c.raw));
  }
  return chain;
}

/**
 * The Bundle that may vouch for the peer: the one of the trust domain its
 * SPIFFE ID names, as go-spiffe's x509bundle.Set picks it, so a partner's CA
 * never vouches for one of ours and ours never for theirs. A chain without a
 * SPIFFE ID is held to the local Bundle, so the chain is still judged first.
 * Throws PeerRefusedError (UntrustedChain) for a trust domain with no Bundle.
 */
export function peerBundle(chain: readonly X509Certificate[], bundles: BundleSet): Bundle {
  const id = spiffeIDOf(chain[0]!);
  if (!id) return bundles.local;
  const bundle = bundles.forTrustDomain(id.trustDomain);
  if (bundle) return bundle;
  throw new PeerRefusedError('UntrustedChain', `peer certificate does not chain to the trust bundle: no bundle for trust domain ${id.trustDomain} is held (held: ${bundles.trustDomains.join(', ')}; a partner's comes with its TrustDomain's spec.federatesWith)`, id.toString());
}

/** The chain against the peer's own trust domain's Bundle; `ok: false` names why. */
export async function verifyPeerChain(chain: X509Certificate[], bundles: BundleSet, now: Date): Promise<{ ok: true } | { ok: false; reason: string }> {
  const bundle = peerBundle(chain, bundles);
  const verified = await verifyChain(chain, bundle.roots, now);
  return verified.ok ? verified : { ok: false, reason: `${bundles.federated ? `(trust domain ${bundle.trustDomain}) ` : ''}${verified.reason}` };
}

/**
 * The same, synchronously, for checkServerIdentity: OpenSSL has verified the
 * chain in full against every trust domain's Roots (credentials.ts), and this
 * narrows it to the peer's own. Without foreign Roots OpenSSL's store was the
 * local Bundle alone, so its verdict stands and no signature is checked twice.
 */
export function checkPeerChainSync(chain: readonly X509Certificate[], bundles: BundleSet): void {
  const bundle = peerBundle(chain, bundles);
  if (bundles.federated && !chainsToRoots(chain, bundle.roots)) {
    throw new PeerRefusedError('UntrustedChain', `peer certificate does not chain to the trust bundle of ${bundle.trustDomain}, the trust domain of its SPIFFE ID`, spiffeIDOf(chain[0]!)?.toString());
  }
}

/**
 * The checks that need no signature work (so they also fit the synchronous
 * checkServerIdentity hook): SPIFFE ID, deny list, Authorizer. `chain` has
 * already been verified against the Bundle.
 */
export function checkPeer(chain: X509Certificate[], policy: PolicyDocument, authorize: Authorizer): PeerIdentity {
  const leaf = chain[0]!;
  const id = spiffeIDOf(leaf);
  if (!id) throw new PeerRefusedError('NoSpiffeID', 'peer certificate has no SPIFFE ID (exactly one spiffe:// URI SAN is required)');
  const serials = chain.map(serialNumberOf);
  const denied = new Map(policy.denyList.map((e) => [e.serialNumber, e.reason]));
  for (const [i, serial] of serials.entries()) {
    const reason = denied.get(serial);
    if (reason === undefined) continue;
    const which = i === 0 ? 'peer certificate' : `peer certificate chain: issuer ${i}`;
    throw new PeerRefusedError('DenyListed', `${which} serial ${serial} is on the deny list (${reason})`, id.toString());
  }
  const verdict = authorize(id, chain);
  if (!verdict.allowed) throw new PeerRefusedError('NotAuthorized', verdict.reason, id.toString());
  return { spiffeID: id, rule: verdict.rule, serialNumber: serials[0]!, certificates: chain };
}

/**
 * Every check, for a socket whose handshake finished without OpenSSL
 * rejecting anything (rejectUnauthorized: false), so the refusal can say why.
 * Resolves with the peer, remembered for peerIdentity(); rejects with a
 * PeerRefusedError. The caller destroys a refused socket.
 */
export async function admitPeer(socket: TLSSocket, identity: Identity, authorize: Authorizer): Promise<PeerIdentity> {
  const cert = socket.getPeerCertificate(true);
  if (!cert?.raw) throw new PeerRefusedError('NoCertificate', 'peer presented no certificate');
  let chain: X509Certificate[];
  try {
    chain = peerChainOf(cert);
  } catch {
    throw new PeerRefusedError('UntrustedChain', 'peer certificate does not chain to the trust bundle: a certificate in its chain could not be parsed');
  }
  // Ours names the reason; OpenSSL's verdict still counts (e.g. key usage checks ours leaves out).
  const ours = await verifyPeerChain(chain, identity.bundles, new Date());
  if (!ours.ok || !socket.authorized) {
    const why = ours.ok ? String(socket.authorizationError) : ours.reason;
    throw new PeerRefusedError('UntrustedChain', `peer certificate does not chain to the trust bundle: ${why}`);
  }
  const peer = checkPeer(chain, identity.policy, authorize);
  admitted.set(socket, peer);
  return peer;
}
