// A trust domain's Bundle: the Roots its peers trust, in the one canonical
// order so that the published ConfigMap only changes when the set does.
import type { X509Certificate } from '@peculiar/x509';
import { PkiError } from './errors.ts';
import { parseCertificates } from './parse.ts';
import { certificatesToPem } from './pem.ts';
import { isValidTrustDomainName } from './spiffeid.ts';

export class Bundle {
  readonly trustDomain: string;
  /** Deduplicated; oldest notBefore first, ties broken by DER bytes. */
  readonly roots: X509Certificate[];

  constructor(trustDomain: string, roots: readonly X509Certificate[]) {
    if (!isValidTrustDomainName(trustDomain)) {
      throw new PkiError('InvalidTrustDomain', `invalid trust domain name ${JSON.stringify(trustDomain.slice(0, 100))}`);
    }
    const unique = new Map(roots.map((c) => [Buffer.from(c.rawData).toString('hex'), c]));
    this.trustDomain = trustDomain;
    this.roots = [...unique.entries()]
      .sort(([derA, a], [derB, b]) => a.notBefore.getTime() - b.notBefore.getTime() || (derA < derB ? -1 : derA > derB ? 1 : 0))
      .map(([, c]) => c);
  }

  static fromPem(trustDomain: string, pem: string): Bundle {
    return new Bundle(trustDomain, parseCertificates(pem));
  }

  toPem(): string {
    return certificatesToPem(this.roots);
  }
}
