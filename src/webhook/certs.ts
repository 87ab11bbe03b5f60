// What the webhook server says about the certificate it serves (its logs and
// status). The certificates themselves are made and rotated by the leader's
// webhook-certificates controller (src/webhook-certificates/).
import { parseCertificates, serialNumberOf } from '../pki/index.ts';

/** Serial, expiry and issuer of the first certificate in a PEM, for logs and status; undefined when unparsable. */
export function describeCertificatePem(pem: string): { serialNumber: string; notAfter: Date; issuer: string } | undefined {
  try {
    const c = parseCertificates(pem)[0]!;
    return { serialNumber: serialNumberOf(c), notAfter: c.notAfter, issuer: c.issuer };
  } catch {
    return undefined;
  }
}
