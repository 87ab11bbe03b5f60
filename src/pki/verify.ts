// Chain verification for the reconcilers ("was this Leaf issued by a CA in
// the current Bundle?") and the SDK. It checks what an issuer must get right:
// signatures up to a trusted root, validity windows, CA flags and path
// lengths. It is not a full RFC 5280 validator (no name constraints or
// policies); TLS handshakes still go through OpenSSL's.
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import type { X509Certificate } from '@peculiar/x509';
import { certificateFields } from './certificate-fields.ts';
import { x509 } from './crypto.ts';

export type VerifyResult = { ok: true } | { ok: false; reason: string };

// One implementation, on OpenSSL's parse (node:crypto): verifying a Leaf this
// way takes ~0.1 ms where @peculiar/x509's object graph and WebCrypto took
// ~2 ms, and the identity reconciler verifies every Leaf it observes (issue 20).

/** Only failures name a certificate, so only they pay for the full parse (which may refuse what OpenSSL read). */
function fullParse(cert: NodeX509Certificate): X509Certificate | undefined {
  try {
    return new x509.X509Certificate(cert.raw);
  } catch {
    return undefined;
  }
}

function label(cert: NodeX509Certificate): string {
  const full = fullParse(cert);
  const uri = full?.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.find((n) => n.type === 'url')?.value;
  return JSON.stringify(full?.subject || uri || `serial ${full?.serialNumber ?? cert.serialNumber}`);
}

const issuedBy = (cert: NodeX509Certificate, issuer: NodeX509Certificate) => {
  try {
    return certificateFields(cert).issuer.equals(certificateFields(issuer).subject) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
};

/** Whether `issuer` signed `cert`: names chain and the signature verifies. */
export async function signedBy(cert: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  return issuedBy(nodeCertificate(cert), nodeCertificate(issuer));
}

function validityProblem(cert: NodeX509Certificate, now: Date): string | undefined {
  if (now < cert.validFromDate) return `certificate ${label(cert)} is not valid before ${cert.validFromDate.toISOString()}`;
  if (now > cert.validToDate) return `certificate ${label(cert)} expired at ${cert.validToDate.toISOString()}`;
  return undefined;
}

/**
 * Why `issuer` may not sign a certificate that has `below` non-self-issued
 * intermediates under it, or undefined when it may.
 */
function issuerProblem(issuer: NodeX509Certificate, below: number): string | undefined {
  const f = certificateFields(issuer);
  if (!f.ca) return `issuer ${label(issuer)} is not a CA`;
  if (f.keyCertSign === false) return `issuer ${label(issuer)} lacks the keyCertSign key usage`;
  if (f.pathLength !== undefined && below > f.pathLength) {
    return `issuer ${label(issuer)} allows ${f.pathLength} intermediate(s) below it, the chain has ${below}`;
  }
  return undefined;
}

const isSelfIssued = (cert: NodeX509Certificate) => { const f = certificateFields(cert); return f.subject.equals(f.issuer); };

/** Verifies `chain` (Leaf first, then intermediates, root optional) against `roots` at time `now`. */
export async function verifyChain(chain: X509Certificate[], roots: X509Certificate[], now: Date): Promise<VerifyResult> {
  return verifyCertificates(chain.map(nodeCertificate), roots.map(nodeCertificate), now);
}

/** verifyChain on certificates node:crypto parsed. */
export function verifyCertificates(chain: readonly NodeX509Certificate[], roots: readonly NodeX509Certificate[], now: Date): VerifyResult {
  const fail = (reason: string): VerifyResult => ({ ok: false, reason });
  if (chain.length === 0) return fail('the chain is empty');
  let intermediatesBelow = 0;
  for (let i = 0; ; i++) {
    const cert = chain[i]!;
    const problem = validityProblem(cert, now);
    if (problem) return fail(problem);
    if (roots.some((r) => r.raw.equals(cert.raw))) return { ok: true };

    const next = chain[i + 1];
    let issuer: NodeX509Certificate | undefined;
    if (next) {
      if (!issuedBy(cert, next)) return fail(`certificate ${label(cert)} is not signed by the next certificate in the chain, ${label(next)}`);
      issuer = next;
    } else {
      issuer = roots.find((root) => issuedBy(cert, root));
      if (!issuer) return fail(`certificate ${label(cert)} was issued by ${JSON.stringify(fullParse(cert)?.issuer ?? cert.issuer)}, which is not a root in the bundle`);
    }
    if (i > 0 && !isSelfIssued(cert)) intermediatesBelow++;
    const why = issuerProblem(issuer, intermediatesBelow);
    if (why) return fail(why);
    if (!next) {
      // The issuer is a trusted root; its own window still matters.
      const rootProblem = validityProblem(issuer, now);
      return rootProblem ? fail(rootProblem) : { ok: true };
    }
  }
}

const nodeCertificates = new WeakMap<X509Certificate, NodeX509Certificate>();

/** The node:crypto parse of a certificate, once per object. */
export function nodeCertificate(cert: X509Certificate): NodeX509Certificate {
  let c = nodeCertificates.get(cert);
  if (!c) {
    c = new NodeX509Certificate(Buffer.from(cert.rawData));
    nodeCertificates.set(cert, c);
  }
  return c;
}

/**
 * Synchronous, for node's checkServerIdentity hook: whether `chain` (Leaf
 * first, as the peer presented it) leads to one of `roots`, each link checked
 * as verifyChain checks it (issuer Name and signature). Links only: it narrows a chain OpenSSL has already verified in full
 * (validity, CA flags, path length) against a wider store, to one trust
 * domain's Roots. Anywhere else, use verifyChain.
 */
export function chainsToRoots(chain: readonly X509Certificate[], roots: readonly X509Certificate[]): boolean {
  const certs = chain.map(nodeCertificate);
  const anchors = roots.map(nodeCertificate);
  for (let i = 0; i < certs.length; i++) {
    const cert = certs[i]!;
    if (anchors.some((r) => r.raw.equals(cert.raw) || issuedBy(cert, r))) return true;
    const next = certs[i + 1];
    if (!next || !issuedBy(cert, next)) return false;
  }
  return false;
}
