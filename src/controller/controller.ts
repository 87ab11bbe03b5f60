// A controller, declared rather than wired (kube-rs's Controller::new(api)
// .owns(..).watches(..).run(reconcile, error_policy)): the kind it reconciles,
// what else it reacts to and how each change maps to its keys, how long work
// caused by other objects waits to be coalesced, its reconcile and its error
// policy. The manager (manager.ts) turns declarations into shared informers,
// queues and metrics; nothing here enqueues anything.
import type { ObjectMeta } from '../api/types.ts';
import type { Backoff } from '../kube/backoff.ts';
import type { ErrorPolicy, Reconciler } from './queue.ts';

export interface KubeObject { metadata: ObjectMeta }

/** What a source tells its listeners. A change carries the version delivered before it, if any. */
export type SourceEvent<T> =
  | { type: 'change'; obj: T; old?: T }
  | { type: 'delete'; obj: T }
  | { type: 'resync'; obj: T };

/** Anything a controller can react to: a shared informer (manager.ts) or an in-memory state that says when it moved. */
export interface Source<T> {
  subscribe(listener: (e: SourceEvent<T>) => void): void;
}

/** Decides whether a change (not a deletion or a resync) is worth a reconcile. */
export type Predicate<T> = (obj: T, old: T | undefined) => boolean;

/**
 * controller-runtime's GenerationChangedPredicate, widened to the metadata a
 * reconcile acts on: our own status writes come back as watch events, and
 * reacting to them would defeat backoff and loop.
 */
export const specOrMetadataChanged: Predicate<KubeObject> = (obj, old) => {
  if (!old) return true;
  const f = (m: ObjectMeta) => JSON.stringify([m.generation, m.annotations, m.labels, m.finalizers, m.deletionTimestamp]);
  return f(obj.metadata) !== f(old.metadata);
};

/** For watches that read only an object's labels (a Namespace for tenancy): other changes cause no work. */
export const labelsChanged: Predicate<KubeObject> = (obj, old) => !old || JSON.stringify(obj.metadata.labels ?? {}) !== JSON.stringify(old.metadata.labels ?? {});

/** The keys of the controller's objects that an event of another object concerns. */
export type Mapper<T> = (obj: T) => Iterable<string>;

export interface WatchOptions<T> {
  /** Which changes count; deletions and resyncs always do. Default: every change. */
  predicate?: Predicate<T>;
  /** The work waits the controller's coalescing delay: a burst of N changes makes one pass, not N. */
  coalesced?: boolean;
  /** Resyncs of this source cause no work (the controller's own objects resync themselves). */
  resync?: boolean;
}

export interface Watch<T = never> {
  source: Source<T>;
  map: Mapper<T>;
  options: WatchOptions<T>;
}

export interface ControllerDeclaration {
  name: string;
  /** The shared informer of the kind reconciled: every cached object is queued once caches synced. */
  primary?: { list(): readonly KubeObject[] };
  /** Keys queued once caches synced, for a controller of fixed keys rather than a kind (the webhook's certificates). */
  keys: readonly string[];
  // Heterogeneous sources: each watch's mapper takes its own source's objects.
  watches: Watch<any>[];
  coalesceMs: number;
  reconcile: Reconciler;
  errorPolicy?: ErrorPolicy;
  concurrency?: number;
  backoff?: Backoff;
}

/** `namespace/name`, or `name` for a cluster-scoped object: the key every controller uses for its own kind. */
export function objectKey(o: KubeObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name!;
}

/** Splits a key of objectKey's into namespace and name. */
export function splitKey(key: string): [namespace: string, name: string] {
  const i = key.indexOf('/');
  return i < 0 ? ['', key] : [key.slice(0, i), key.slice(i + 1)];
}

export interface LabelMapping {
  /** The owner is cluster-scoped: its key is the label's value alone. */
  cluster?: boolean;
  /** Only objects that also carry this label. */
  with?: string;
  /** Only objects that do not carry this label. */
  without?: string;
}

/**
 * Objects labelled with their owner's name (a Secret labelled with an identity
 * maps to that identity's key, in the Secret's namespace): owner references
 * alone do not survive the object being made before its owner is cached.
 */
export function byLabel(label: string, m: LabelMapping = {}): Mapper<KubeObject> {
  return (o) => {
    const labels = o.metadata.labels ?? {};
    const owner = labels[label];
    if (!owner || (m.with && !labels[m.with]) || (m.without && labels[m.without])) return [];
    return [m.cluster ? owner : `${o.metadata.namespace}/${owner}`];
  };
}

/** A source of an in-memory state that calls back with the name of what moved (e.g. the TrustStore). */
export function changesOf(state: { onChange(listener: (name: string) => void): void }): Source<string> {
  return { subscribe: (listener) => state.onChange((name) => listener({ type: 'change', obj: name })) };
}

export class ControllerBuilder {
  readonly #d: ControllerDeclaration;

  constructor(name: string) {
    this.#d = { name, keys: [], watches: [], coalesceMs: 0, reconcile: async () => undefined };
  }

  /** The kind reconciled: each change of an object queues its own key. */
  for<T extends KubeObject>(source: Source<T> & { list(): readonly T[] }, options: WatchOptions<T> = {}): this {
    this.#d.primary = source;
    return this.watches(source, (o) => [objectKey(o)], options);
  }

  /** A controller of one fixed key, reconciled once caches synced and then as its results ask. */
  forKey(key: string): this {
    this.#d.keys = [...this.#d.keys, key];
    return this;
  }

  /** Objects this controller makes, mapped back to their owner's key (byLabel). Their changes are queued at once. */
  owns<T extends KubeObject>(source: Source<T> | undefined, map: Mapper<T>, options: Omit<WatchOptions<T>, 'coalesced'> = {}): this {
    return this.watches(source, map, options);
  }

  /** Other objects whose changes concern some of this controller's keys; an absent source (a kind the API server does not serve) is skipped. */
  watches<T>(source: Source<T> | undefined, map: Mapper<T>, options: WatchOptions<T> = {}): this {
    if (source) this.#d.watches.push({ source, map, options });
    return this;
  }

  /** How long work from a `coalesced` watch waits, so a burst of changes makes one reconcile. */
  coalesce(ms: number): this {
    this.#d.coalesceMs = ms;
    return this;
  }

  /** Overrides the manager's concurrency and retry backoff for this controller. */
  queue(o: { concurrency?: number; backoff?: Backoff }): this {
    Object.assign(this.#d, o);
    return this;
  }

  run(reconcile: Reconciler, errorPolicy?: ErrorPolicy): ControllerDeclaration {
    return { ...this.#d, reconcile, ...(errorPolicy ? { errorPolicy } : {}) };
  }
}

export function controller(name: string): ControllerBuilder {
  return new ControllerBuilder(name);
}

/** A source fired by hand: how a caller asks a controller of fixed keys to reconcile one now. */
export class Trigger implements Source<string> {
  readonly #listeners: Array<(e: SourceEvent<string>) => void> = [];

  subscribe(listener: (e: SourceEvent<string>) => void): void {
    this.#listeners.push(listener);
  }

  fire(key: string): void {
    for (const l of this.#listeners) l({ type: 'change', obj: key });
  }
}
