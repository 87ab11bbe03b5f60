// Chain verification for the reconcilers ("was this Leaf issued by a CA in
// the current Bundle?") and the SDK. It checks what an issuer must get right:
// signatures up to a trusted root, validity windows, CA flags and path
// lengths. It is not a full RFC 5280 validator (no name constraints or
// policies); TLS handshakes still go through OpenSSL's.
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import type { X509Certificate } from '@peculiar/x509';
import { x509 } from './crypto.ts';
import { isSelfIssued } from './extensions.ts';

export type VerifyResult = { ok: true } | { ok: false; reason: string };

function label(cert: X509Certificate): string {
  const uri = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.find((n) => n.type === 'url')?.value;
  return JSON.stringify(cert.subject || uri || `serial ${cert.serialNumber}`);
}

const sameName = (a: x509.Name, b: x509.Name) => Buffer.from(a.toArrayBuffer()).equals(Buffer.from(b.toArrayBuffer()));
const sameCert = (a: X509Certificate, b: X509Certificate) => Buffer.from(a.rawData).equals(Buffer.from(b.rawData));

/** Whether `issuer` signed `cert`: names chain and the signature verifies. */
export async function signedBy(cert: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  if (!sameName(cert.issuerName, issuer.subjectName)) return false;
  return cert.verify({ publicKey: issuer.publicKey, signatureOnly: true }).catch(() => false);
}

function validityProblem(cert: X509Certificate, now: Date): string | undefined {
  if (now < cert.notBefore) return `certificate ${label(cert)} is not valid before ${cert.notBefore.toISOString()}`;
  if (now > cert.notAfter) return `certificate ${label(cert)} expired at ${cert.notAfter.toISOString()}`;
  return undefined;
}

/**
 * Why `issuer` may not sign a certificate that has `below` non-self-issued
 * intermediates under it, or undefined when it may.
 */
function issuerProblem(issuer: X509Certificate, below: number): string | undefined {
  const bc = issuer.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) return `issuer ${label(issuer)} is not a CA`;
  const ku = issuer.getExtension(x509.KeyUsagesExtension);
  if (ku && !(ku.usages & x509.KeyUsageFlags.keyCertSign)) return `issuer ${label(issuer)} lacks the keyCertSign key usage`;
  if (bc.pathLength !== undefined && below > bc.pathLength) {
    return `issuer ${label(issuer)} allows ${bc.pathLength} intermediate(s) below it, the chain has ${below}`;
  }
  return undefined;
}

/** Verifies `chain` (Leaf first, then intermediates, root optional) against `roots` at time `now`. */
export async function verifyChain(chain: X509Certificate[], roots: X509Certificate[], now: Date): Promise<VerifyResult> {
  const fail = (reason: string): VerifyResult => ({ ok: false, reason });
  if (chain.length === 0) return fail('the chain is empty');
  let intermediatesBelow = 0;
  for (let i = 0; ; i++) {
    const cert = chain[i]!;
    const problem = validityProblem(cert, now);
    if (problem) return fail(problem);
    if (roots.some((r) => sameCert(r, cert))) return { ok: true };

    const next = chain[i + 1];
    let issuer: X509Certificate | undefined;
    if (next) {
      if (!(await signedBy(cert, next))) return fail(`certificate ${label(cert)} is not signed by the next certificate in the chain, ${label(next)}`);
      issuer = next;
    } else {
      for (const root of roots) {
        if (await signedBy(cert, root)) {
          issuer = root;
          break;
        }
      }
      if (!issuer) return fail(`certificate ${label(cert)} was issued by ${JSON.stringify(cert.issuer)}, which is not a root in the bundle`);
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

function nodeCertificate(cert: X509Certificate): NodeX509Certificate {
  let c = nodeCertificates.get(cert);
  if (!c) {
    c = new NodeX509Certificate(Buffer.from(cert.rawData));
    nodeCertificates.set(cert, c);
  }
  return c;
}

const issuedBy = (cert: X509Certificate, issuer: X509Certificate) => {
  const c = nodeCertificate(cert);
  const i = nodeCertificate(issuer);
  return c.checkIssued(i) && c.verify(i.publicKey);
};

/**
 * Synchronous, for node's checkServerIdentity hook: whether `chain` (Leaf
 * first, as the peer presented it) leads by signatures to one of `roots`.
 * Signatures only: it narrows a chain OpenSSL has already verified in full
 * (validity, CA flags, path length) against a wider store, to one trust
 * domain's Roots. Anywhere else, use verifyChain.
 */
export function chainsToRoots(chain: readonly X509Certificate[], roots: readonly X509Certificate[]): boolean {
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    if (roots.some((r) => sameCert(r, cert) || issuedBy(cert, r))) return true;
    const next = chain[i + 1];
    if (!next || !issuedBy(cert, next)) return false;
  }
  return false;
}
