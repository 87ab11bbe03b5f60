// PEM framing for certificates. Keys have their own reader in keys.ts.
import type { X509Certificate } from '@peculiar/x509';

/** Every PEM block with this label (global; the body is group 1). */
export function pemBlockPattern(label: string): RegExp {
  return new RegExp(`-----BEGIN ${label}-----([^-]*)-----END ${label}-----`, 'g');
}

const CERTIFICATE_BLOCK = pemBlockPattern('CERTIFICATE');
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The base64 body (no whitespace) of every CERTIFICATE block, in order; null for a block whose body is not base64. */
export function certificateBodies(pem: string): (string | null)[] {
  return [...pem.matchAll(CERTIFICATE_BLOCK)].map((m) => {
    const body = m[1]!.replace(/\s+/g, '');
    return BASE64.test(body) ? body : null;
  });
}

/** The DER bytes of every CERTIFICATE block, in order; null for a block whose body is not base64. */
export function certificateBlocks(pem: string): (Uint8Array | null)[] {
  return certificateBodies(pem).map((body) => (body === null ? null : Buffer.from(body, 'base64')));
}

/** Certificates as concatenated PEM blocks, each ending in a newline. */
export function certificatesToPem(certs: readonly X509Certificate[]): string {
  return certs.map((c) => `${c.toString('pem').trim()}\n`).join('');
}

/** Each CERTIFICATE block on its own, as PEM text ending in a newline, in order. */
export function certificatePemBlocks(pem: string): string[] {
  return [...pem.matchAll(CERTIFICATE_BLOCK)].map((m) => `${m[0]}\n`);
}
