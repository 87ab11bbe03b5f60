// Runs declared controllers (controller.ts): one shared informer per kind,
// one work queue per controller, and the counting of every reconcile. Nothing
// of a controller that reads caches is queued until every cache has synced: a
// reconcile that saw the identities but not yet their TrustDomain would report
// a false failure. Then every object of each controller's kind is queued once,
// and from there on only events that pass a watch's predicate are. A
// controller that reads no cache (the webhook's certificates) starts at once,
// so a cache that cannot sync (an RBAC gap) does not also stop the webhook.
import type { Logger } from 'pino';
import type { Backoff } from '../kube/backoff.ts';
import { toKubeError } from '../kube/errors.ts';
import type { Restart } from '../kube/restart.ts';
import type { InformerHandlers } from '../kube/client.ts';
import type { Metrics } from './metrics.ts';
import { WorkQueue } from './queue.ts';
import { objectKey, type ControllerDeclaration, type KubeObject, type Source, type SourceEvent } from './controller.ts';

/** What an informer (kube/informer.ts) offers once made. */
export interface InformerLike<T> {
  start(): Promise<void>;
  stop(): Promise<void>;
  hasSynced(): boolean;
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): readonly T[];
}

/** One kind's cache, filled by one list-watch and shared by every controller that watches the kind. */
export class Watched<T extends KubeObject> implements Source<T> {
  readonly #listeners: Array<(e: SourceEvent<T>) => void> = [];
  // The version last delivered per object, for predicates that compare old and new (the informer passes only the new).
  readonly #delivered = new Map<string, T>();
  #informer?: InformerLike<T>;

  subscribe(listener: (e: SourceEvent<T>) => void): void {
    this.#listeners.push(listener);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.informer.list(namespace);
  }

  /** @internal The manager's: attaches the informer made with handlers(). */
  attach(informer: InformerLike<T>): void {
    this.#informer = informer;
  }

  get informer(): InformerLike<T> {
    if (!this.#informer) throw new Error('informer not attached');
    return this.#informer;
  }

  handlers(): Required<Pick<InformerHandlers<T>, 'onChange' | 'onDelete' | 'onResync'>> {
    return {
      onChange: (obj) => {
        const key = objectKey(obj);
        const old = this.#delivered.get(key);
        this.#delivered.set(key, obj);
        this.#emit({ type: 'change', obj, ...(old ? { old } : {}) });
      },
      onDelete: (obj) => {
        this.#delivered.delete(objectKey(obj));
        this.#emit({ type: 'delete', obj });
      },
      onResync: (obj) => this.#emit({ type: 'resync', obj }),
    };
  }

  #emit(e: SourceEvent<T>): void {
    for (const l of this.#listeners) l(e);
  }
}

export interface ManagerOptions {
  log: Logger;
  metrics: Metrics;
  /** Every cached object is re-delivered this often (a safety net against missed events). */
  resyncMs: number;
  /** Reconciles of one controller at once, unless its declaration says otherwise. */
  concurrency: number;
  backoff?: Backoff;
}

interface Running {
  declaration: ControllerDeclaration;
  queue: WorkQueue;
  /** Events are queued: from the start for a controller that reads no cache, else once every cache synced. */
  open: boolean;
}

export class ControllerManager {
  readonly #o: ManagerOptions;
  // Heterogeneous kinds.
  readonly #watched: Watched<KubeObject>[] = [];
  readonly #running: Running[] = [];

  constructor(o: ManagerOptions) {
    this.#o = o;
  }

  /** A shared informer of one kind, made by `make` (a KubeClient informer factory) with the manager's handlers. */
  watch<T extends KubeObject>(resource: string, make: (h: InformerHandlers<T>) => InformerLike<T>): Watched<T> {
    const { log, metrics, resyncMs } = this.#o;
    const w = new Watched<T>();
    w.attach(make({
      resyncMs, ...w.handlers(),
      // The informer says what to do once per outage at warn, then at debug.
      onRestart: (err: unknown, delayMs: number, restart?: Restart) => {
        metrics.informerRestarts.inc({ resource });
        log[restart?.level ?? 'warn']({ resource, delayMs, err: toKubeError(err).message }, restart?.message ?? 'watch failed; restarting');
      },
    }));
    this.#watched.push(w as unknown as Watched<KubeObject>);
    return w;
  }

  add(...declarations: ControllerDeclaration[]): void {
    for (const d of declarations) {
      const r: Running = { declaration: d, queue: this.#queueOf(d), open: false };
      const { queue } = r;
      for (const w of d.watches) {
        const { predicate, coalesced, resync = true } = w.options;
        w.source.subscribe((e) => {
          if (!r.open || (e.type === 'resync' && !resync) || (e.type === 'change' && predicate && !predicate(e.obj, e.old))) return;
          const keys = [...w.map(e.obj)];
          // One change fanning out to many keys, or a resync, is bulk work (queue.ts Priority).
          const priority = e.type === 'resync' || keys.length > 1 ? 'low' : 'normal';
          for (const key of keys) {
            if (coalesced) queue.addAfter(key, d.coalesceMs);
            else queue.add(key, priority);
          }
        });
      }
      this.#running.push(r);
    }
  }

  /** Starts every informer, waits until all synced, then queues every controller's objects. */
  async start(): Promise<void> {
    const readsCaches = (r: Running) => r.declaration.primary !== undefined || r.declaration.watches.some((w) => w.source instanceof Watched);
    const open = (r: Running) => {
      r.open = true;
      // The first pass is bulk work: a change arriving during it goes first.
      for (const o of r.declaration.primary?.list() ?? []) r.queue.add(objectKey(o), 'low');
      for (const key of r.declaration.keys) r.queue.add(key);
    };
    this.#running.filter((r) => !readsCaches(r)).forEach(open);
    await Promise.all(this.#watched.map((w) => w.informer.start()));
    this.#running.filter(readsCaches).forEach(open);
    if (this.#watched.length) this.#o.log.info('caches synced; reconciling');
  }

  ready(): boolean {
    return this.#watched.every((w) => w.informer.hasSynced());
  }

  /** Resolves when every queue is idle, coalesced work (and retries as short) included. */
  async idle(): Promise<void> {
    const within = Math.max(0, ...this.#running.map((r) => r.declaration.coalesceMs));
    for (let soon = 1; soon > 0;) {
      for (const { queue } of this.#running) await queue.drain();
      soon = Math.max(0, ...this.#running.map((r) => r.queue.dueWithin(within)));
      if (soon > 0) await new Promise((r) => setTimeout(r, soon + 10));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.#watched.map((w) => w.informer.stop()));
    await Promise.all(this.#running.map((r) => r.queue.shutdown()));
  }

  #queueOf(d: ControllerDeclaration): WorkQueue {
    const { log, metrics } = this.#o;
    const controller = d.name;
    return new WorkQueue(d.reconcile, {
      concurrency: d.concurrency ?? this.#o.concurrency,
      backoff: d.backoff ?? this.#o.backoff ?? { baseMs: 1000, maxMs: 5 * 60_000 },
      ...(d.errorPolicy ? { errorPolicy: d.errorPolicy } : {}),
      onError: (key, err, attempt, retryInMs) =>
        log.debug({ controller, key, attempt, retryInMs, err: err instanceof Error ? err.message : String(err) }, 'reconcile will be retried'),
      onDepth: (depth) => metrics.queueDepth.set({ controller }, depth),
      onOutcome: (result) => metrics.reconciles.inc({ controller, result }),
    });
  }
}
