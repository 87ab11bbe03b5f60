// Which policy holders an identity's change concerns: an index from peer to
// holders, kept up to date from the identity and namespace events themselves,
// so an identity event costs the holders whose policy.json it can change, not
// every holder (each then recomputing its peers: N × holders per pass).
//
// What one identity event costs, by the rule shapes of the holders
// (dependencies.ts), with nothing that grows with the number of identities:
//   agent {name, namespace}           O(1): a map from the peer's key
//   spiffeID                          nothing: it names no AgentIdentity
//   selector (own namespace)          O(holders with such a rule in the peer's namespace)
//   selector + namespaceSelector,
//   namespaceSelector                 O(holders with such a rule, cluster-wide)
//   host map (spec.proxy, spec.policy.egress)
//                                     O(host-map holders), and only when the peer appears, leaves, or
//                                     changes its dnsNames, SPIFFE ID or TrustDomain: the map lists
//                                     every identity, so each of them is concerned by definition
// A namespace's labels changing costs O(holders with namespaceSelector rules).
// Holders found are filtered by whether the peer matches their selectors
// before or after, so a label change elsewhere queues nobody.
import { trustDomainOf } from '../api/defaults.ts';
import type { AgentIdentity, Namespace } from '../api/types.ts';
import { objectKey, splitKey, type Source, type SourceEvent } from '../controller/controller.ts';
import { selectableNamespaceLabels } from '../policy/compile.ts';
import { matchesSelector } from '../policy/selector.ts';
import { policyDependencies, type PolicyDependencies } from './dependencies.ts';

/** What of a peer a holder's policy.json reads. */
interface PeerFacts {
  namespace: string;
  trustDomain: string;
  labels: Record<string, string>;
  dnsNames: readonly string[];
  spiffeID?: string;
}

const factsOf = (i: AgentIdentity): PeerFacts => ({
  namespace: i.metadata.namespace!, trustDomain: trustDomainOf(i), labels: i.metadata.labels ?? {},
  dnsNames: i.spec.dnsNames ?? [], spiffeID: i.status?.spiffeID,
});

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Keys of the holders to reconcile, as a source a controller watches (coalesced). */
export class PolicyHolders implements Source<string> {
  readonly #listeners: Array<(e: SourceEvent<string>) => void> = [];
  readonly #namespaces: { get(name: string): Namespace | undefined };
  readonly #peers = new Map<string, PeerFacts>();
  readonly #holders = new Map<string, PolicyDependencies>();
  readonly #byAgent = new Map<string, Set<string>>();
  /** Namespace → holders with a selector rule for their own namespace. */
  readonly #ownNamespace = new Map<string, Set<string>>();
  readonly #anyNamespace = new Set<string>();
  readonly #hostMap = new Set<string>();

  /** Subscribes at once: the index must see the initial list, which the controller's own watches ignore until caches synced. */
  constructor(identities: Source<AgentIdentity>, namespaces: Source<Namespace> & { get(name: string): Namespace | undefined }) {
    this.#namespaces = namespaces;
    identities.subscribe((e) => this.#emit(this.#onIdentity(e)));
    namespaces.subscribe((e) => this.#emit(this.#onNamespace(e)));
  }

  subscribe(listener: (e: SourceEvent<string>) => void): void {
    this.#listeners.push(listener);
  }

  #onIdentity(e: SourceEvent<AgentIdentity>): Set<string> {
    const key = objectKey(e.obj);
    const present = e.type !== 'delete';
    this.#register(key, present ? policyDependencies(e.obj) : undefined);
    const before = this.#peers.get(key);
    const after = present ? factsOf(e.obj) : undefined;
    if (after) this.#peers.set(key, after);
    else this.#peers.delete(key);
    const out = new Set<string>();
    if (same(before, after)) return out;
    const hostMapMoved = !before || !after || before.trustDomain !== after.trustDomain || before.spiffeID !== after.spiffeID || !same(before.dnsNames, after.dnsNames);
    for (const f of [before, after]) if (f) this.#concerned(key, f, out);
    if (hostMapMoved) for (const h of this.#hostMap) out.add(h);
    return out;
  }

  /** A namespace's labels decide what namespaceSelector rules pick; resyncs change nothing here. */
  #onNamespace(e: SourceEvent<Namespace>): Set<string> {
    const out = new Set<string>();
    if (e.type === 'resync' || this.#anyNamespace.size === 0) return out;
    const name = e.obj.metadata.name!;
    const before = e.type === 'change' ? e.old?.metadata.labels : e.obj.metadata.labels;
    const after = e.type === 'delete' ? undefined : e.obj.metadata.labels;
    if (e.type === 'change' && e.old && same(before, after)) return out;
    const views = [selectableNamespaceLabels(name, before), selectableNamespaceLabels(name, after)];
    for (const h of this.#anyNamespace) {
      if (this.#holders.get(h)!.anyNamespace.some((r) => views.some((v) => matchesSelector(r.namespaceSelector, v)))) out.add(h);
    }
    return out;
  }

  /** The holders whose rules can name a peer with these facts (host map aside). */
  #concerned(peer: string, f: PeerFacts, out: Set<string>): void {
    for (const h of this.#byAgent.get(peer) ?? []) out.add(h);
    for (const h of this.#ownNamespace.get(f.namespace) ?? []) {
      if (this.#holders.get(h)!.ownNamespace.some((s) => matchesSelector(s, f.labels))) out.add(h);
    }
    if (this.#anyNamespace.size === 0) return;
    const nsLabels = selectableNamespaceLabels(f.namespace, this.#namespaces.get(f.namespace)?.metadata.labels);
    for (const h of this.#anyNamespace) {
      const rules = this.#holders.get(h)!.anyNamespace;
      if (rules.some((r) => matchesSelector(r.namespaceSelector, nsLabels) && (!r.selector || matchesSelector(r.selector, f.labels)))) out.add(h);
    }
  }

  /** Files a holder under what its rules name, replacing what it named before. */
  #register(key: string, deps: PolicyDependencies | undefined): void {
    const old = this.#holders.get(key);
    if (same(old, deps)) return;
    const [namespace] = splitKey(key);
    if (old) {
      for (const a of old.agents) remove(this.#byAgent, a, key);
      remove(this.#ownNamespace, namespace, key);
      this.#anyNamespace.delete(key);
      this.#hostMap.delete(key);
      this.#holders.delete(key);
    }
    if (!deps) return;
    this.#holders.set(key, deps);
    for (const a of deps.agents) add(this.#byAgent, a, key);
    if (deps.ownNamespace.length) add(this.#ownNamespace, namespace, key);
    if (deps.anyNamespace.length) this.#anyNamespace.add(key);
    if (deps.hostMap) this.#hostMap.add(key);
  }

  #emit(keys: Set<string>): void {
    for (const key of keys) for (const l of this.#listeners) l({ type: 'change', obj: key });
  }
}

function add(index: Map<string, Set<string>>, at: string, key: string): void {
  let set = index.get(at);
  if (!set) index.set(at, set = new Set());
  set.add(key);
}

function remove(index: Map<string, Set<string>>, at: string, key: string): void {
  const set = index.get(at);
  if (!set?.delete(key)) return;
  if (set.size === 0) index.delete(at);
}
