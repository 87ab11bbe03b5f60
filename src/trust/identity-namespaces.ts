// The namespaces that hold identities of each TrustDomain (each gets a bundle
// copy), counted from the identity events themselves. A TrustDomain pass then
// reads the set instead of scanning every identity, and an identity event
// concerns its TrustDomain only when a namespace gains its first identity of
// it or loses its last: the one thing of an identity a bundle pass publishes.
import { trustDomainOf } from '../api/defaults.ts';
import type { AgentIdentity } from '../api/types.ts';
import { objectKey, type Source, type SourceEvent } from '../controller/controller.ts';

interface Place { trustDomain: string; namespace: string }

export class IdentityNamespaces implements Source<string> {
  readonly #listeners: Array<(e: SourceEvent<string>) => void> = [];
  /** TrustDomain → namespace → identities there (not being deleted). */
  readonly #counts = new Map<string, Map<string, number>>();
  readonly #placed = new Map<string, Place>();

  /** Subscribes at once, so the counts include the initial list. */
  constructor(identities: Source<AgentIdentity>) {
    identities.subscribe((e) => this.#on(e));
  }

  /** The namespaces with at least one identity of the TrustDomain. */
  of(trustDomain: string): Iterable<string> {
    return this.#counts.get(trustDomain)?.keys() ?? [];
  }

  subscribe(listener: (e: SourceEvent<string>) => void): void {
    this.#listeners.push(listener);
  }

  #on(e: SourceEvent<AgentIdentity>): void {
    const key = objectKey(e.obj);
    const before = this.#placed.get(key);
    // An identity being deleted takes no bundle copy (bundleNamespaces' rule before this index).
    const after = e.type !== 'delete' && !e.obj.metadata.deletionTimestamp ? { trustDomain: trustDomainOf(e.obj), namespace: e.obj.metadata.namespace! } : undefined;
    if (before?.trustDomain === after?.trustDomain && before?.namespace === after?.namespace) return;
    if (after) this.#placed.set(key, after);
    else this.#placed.delete(key);
    const moved = new Set<string>();
    if (before && this.#count(before, -1) === 0) moved.add(before.trustDomain);
    if (after && this.#count(after, +1) === 1) moved.add(after.trustDomain);
    for (const trustDomain of moved) for (const l of this.#listeners) l({ type: 'change', obj: trustDomain });
  }

  /** Adds `by` to the place's count; returns the new count. */
  #count(p: Place, by: number): number {
    let namespaces = this.#counts.get(p.trustDomain);
    if (!namespaces) this.#counts.set(p.trustDomain, namespaces = new Map());
    const n = (namespaces.get(p.namespace) ?? 0) + by;
    if (n > 0) namespaces.set(p.namespace, n);
    else namespaces.delete(p.namespace);
    if (namespaces.size === 0) this.#counts.delete(p.trustDomain);
    return n;
  }
}
