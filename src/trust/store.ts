// The signing material of each TrustDomain, loaded by the trust reconciler
// and read by the identity reconciler. In memory only: the CA key's one
// durable home is its Secret.
import type { X509Certificate } from '@peculiar/x509';
import type { CA } from '../pki/ca.ts';

export interface TrustDomainState {
  /** TrustDomain object name. */
  name: string;
  /** SPIFFE trust domain name, e.g. cluster.local. */
  trustDomain: string;
  spiffeIDTemplate: string;
  /** Absent while a changed external CA waits for its roots to be published: issuance pauses. */
  signer?: CA;
  /** Roots that peers trust; leaves must chain to one of them. */
  bundle: X509Certificate[];
  bundlePem: string;
  caFingerprint: string;
  /** Fingerprint of the root new leaves chain to; recorded on each identity Secret. */
  activeRootFingerprint: string;
  /** Roots that no longer sign; leaves chaining to them are re-issued. */
  retiringRootFingerprints: ReadonlySet<string>;
  /** Set while leaves are being moved to the new root. */
  rotation?: { phaseStartedAt: Date; reissueWindowMs: number };
}

export class TrustStore {
  private readonly states = new Map<string, TrustDomainState>();
  private readonly failures = new Map<string, string>();
  private readonly listeners: Array<(name: string) => void> = [];

  get(name: string): TrustDomainState | undefined {
    return this.states.get(name);
  }

  /** Stores the state; listeners hear of it only when the CA or bundle really changed. */
  set(state: TrustDomainState): void {
    const prev = this.states.get(state.name);
    this.states.set(state.name, state);
    this.failures.delete(state.name);
    const changed = !prev || prev.caFingerprint !== state.caFingerprint || prev.bundlePem !== state.bundlePem
      || prev.spiffeIDTemplate !== state.spiffeIDTemplate || prev.trustDomain !== state.trustDomain
      || prev.rotation?.phaseStartedAt.getTime() !== state.rotation?.phaseStartedAt.getTime();
    if (changed) this.emit(state.name);
  }

  /** The TrustDomain is gone. */
  delete(name: string): void {
    this.states.delete(name);
    this.failures.delete(name);
    this.emit(name);
  }

  /** The TrustDomain cannot sign; identities waiting on it hear of it and report why. */
  fail(name: string, message: string): void {
    this.states.delete(name);
    const prev = this.failures.get(name);
    this.failures.set(name, message);
    if (prev !== message) this.emit(name);
  }

  failure(name: string): string | undefined {
    return this.failures.get(name);
  }

  onChange(listener: (name: string) => void): void {
    this.listeners.push(listener);
  }

  private emit(name: string): void {
    for (const l of this.listeners) l(name);
  }
}
