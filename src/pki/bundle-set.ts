// go-spiffe's x509bundle.Set: the Bundle of each trust domain an agent
// trusts, its own and its federated partners'. A peer is verified only
// against the Bundle of the trust domain its SPIFFE ID names, so a partner's
// CA can never mint an identity in ours, and ours never speaks for theirs.
import type { X509Certificate } from '@peculiar/x509';
import type { Bundle } from './bundle.ts';
import { PkiError } from './errors.ts';

export class BundleSet {
  /** The agent's own trust domain's Bundle (ca.crt). */
  readonly local: Bundle;
  readonly #byTrustDomain: ReadonlyMap<string, Bundle>;

  constructor(local: Bundle, foreign: readonly Bundle[] = []) {
    const byTrustDomain = new Map([[local.trustDomain, local]]);
    for (const b of foreign) {
      // Refused rather than merged: a foreign document naming our trust domain is an attempt to speak for it.
      if (byTrustDomain.has(b.trustDomain)) {
        throw new PkiError('InvalidBundle', b.trustDomain === local.trustDomain
          ? `a foreign bundle for ${b.trustDomain}, the local trust domain`
          : `two bundles for trust domain ${b.trustDomain}`);
      }
      byTrustDomain.set(b.trustDomain, b);
    }
    this.local = local;
    this.#byTrustDomain = byTrustDomain;
  }

  /** The Bundle of `trustDomain`, or undefined: then nothing may vouch for its members. */
  forTrustDomain(trustDomain: string): Bundle | undefined {
    return this.#byTrustDomain.get(trustDomain);
  }

  /** Sorted; the local one among them. */
  get trustDomains(): string[] {
    return [...this.#byTrustDomain.keys()].sort();
  }

  /** Whether any foreign Bundle is held. */
  get federated(): boolean {
    return this.#byTrustDomain.size > 1;
  }

  /**
   * Every Root of every Bundle: what OpenSSL's handshake check is given, as it
   * cannot pick a store by the peer's trust domain. The per-trust-domain check
   * (verifyChain or chainsToRoots with forTrustDomain's Roots) must follow.
   */
  allRoots(): X509Certificate[] {
    return [...this.#byTrustDomain.values()].flatMap((b) => b.roots);
  }
}
