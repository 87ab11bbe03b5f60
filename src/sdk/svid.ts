// The agent's own X.509-SVID: its SPIFFE ID, the Leaf and intermediates, and
// the private key, which is held where no property, JSON or inspect can show it.
import { inspect } from 'node:util';
import { serialNumberOf, type SpiffeID, type X509Certificate } from '../pki/index.ts';

const privateKeys = new WeakMap<X509SVID, string>();

export class X509SVID {
  readonly id: SpiffeID;
  /** The Leaf first, then its intermediates. */
  readonly certificates: readonly X509Certificate[];
  /** The same chain as PEM, as read from tls.crt. */
  readonly certificatesPem: string;

  constructor(id: SpiffeID, certificates: readonly X509Certificate[], certificatesPem: string, privateKeyPem: string) {
    this.id = id;
    this.certificates = certificates;
    this.certificatesPem = certificatesPem;
    privateKeys.set(this, privateKeyPem);
  }

  get leaf(): X509Certificate {
    return this.certificates[0]!;
  }

  get serialNumber(): string {
    return serialNumberOf(this.leaf);
  }

  get notAfter(): Date {
    return this.leaf.notAfter;
  }

  [inspect.custom](): string {
    return `X509SVID { id: '${this.id}', serialNumber: '${this.serialNumber}', notAfter: ${this.notAfter.toISOString()} }`;
  }
}

/** For building TLS contexts inside the SDK; deliberately not exported from index.ts. */
export function privateKeyPemOf(svid: X509SVID): string {
  return privateKeys.get(svid)!;
}
