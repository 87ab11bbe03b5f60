// A list-watch cache that does not stay dead: client-go's shared informer
// contract. It lists, then watches from the list's resourceVersion; a watch
// the API server ends is resumed at once from the last resourceVersion seen;
// 410 Gone relists (the cache is replaced: deletes for what vanished, changes
// for the rest, as client-node's ListWatch did); any other failure restarts
// with capped, jittered exponential backoff (restart.ts decides); and every
// cached object is re-delivered each resync period as a safety net against
// missed events. Watches share the process's connection pool (transport.ts)
// but not its rate limit; the list is a request and is paced.
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { KubeConfig } from './config.ts';
import { KubeError, toKubeError } from './errors.ts';
import { planRestart, HEALTHY, type Restart, type RestartState } from './restart.ts';
import { watch, type WatchEvent } from './watch.ts';

export interface InformerOptions<T extends KubernetesObject> {
  name: string;
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  resyncMs: number;
  onChange: (obj: T) => void;
  onDelete?: (obj: T) => void;
  /** Called for every cached object each resync period; defaults to onChange. */
  onResync?: (obj: T) => void;
  /** Applied to each object before it is cached or delivered, e.g. to share strings many objects hold (client-go's SetTransform). */
  transform?: (obj: T) => void;
  /** Each failed attempt, with the delay before the next and what to log. */
  onRestart?: (err: unknown, delayMs: number, restart: Restart) => void;
}

/** client-go's reflector: a watch lasts a random 5 to 10 minutes, so replicas do not all re-watch at once. */
const watchSeconds = () => Math.round(300 * (1 + Math.random()));
/** client-go: a watch that ends this soon without an event is a failure, not a resumable end. */
const SHORT_WATCH_MS = 1000;

const gone = (err: unknown) => toKubeError(err).code === 410;

export class Informer<T extends KubernetesObject> {
  readonly name: string;
  private readonly kc: KubeConfig;
  private readonly opts: InformerOptions<T>;
  /** namespace ('' for cluster-scoped) → name → object. */
  private objects = new Map<string, Map<string, T>>();
  /** The last resourceVersion listed or watched; '' means relist. */
  private resourceVersion = '';
  private synced = false;
  private stopped = false;
  private restart: RestartState = HEALTHY;
  /** When the current attempt began, and the resourceVersion it began (or listed) at. */
  private attempt = { at: 0, resourceVersion: '' };
  private readonly server: string;
  private abort?: AbortController;
  private wake?: () => void;
  private resyncTimer: NodeJS.Timeout | undefined;

  constructor(kc: KubeConfig, opts: InformerOptions<T>) {
    this.name = opts.name;
    this.kc = kc;
    this.opts = opts;
    this.server = kc.getCurrentCluster()?.server ?? 'unknown';
  }

  /** Resolves once the first list has filled the cache; keeps retrying until then. */
  async start(): Promise<void> {
    this.stopped = false;
    while (!this.stopped && !this.synced) {
      this.begin();
      try {
        await this.relist();
        this.synced = true;
      } catch (err) {
        await this.sleep(this.nextDelay(err));
      }
    }
    if (!this.synced) return;
    void this.run();
    const resync = this.opts.onResync ?? this.opts.onChange;
    this.resyncTimer = setInterval(() => this.list().forEach((o) => resync(o)), this.opts.resyncMs);
    this.resyncTimer.unref();
  }

  hasSynced(): boolean {
    return this.synced;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.objects.get(namespace ?? '')?.get(name);
  }

  list(namespace?: string): readonly T[] {
    if (namespace) return [...this.objects.get(namespace)?.values() ?? []];
    return [...this.objects.values()].flatMap((m) => [...m.values()]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    this.abort?.abort();
    this.wake?.();
  }

  /** Watches, resumes and relists until stopped; only a failure waits, by restart.ts's backoff. */
  /**
   * An attempt lasts from one failure to the next, across the watches resumed
   * in between, so restart.ts sees whether it ran long or got events.
   */
  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        await this.watchOnce();
      } catch (err) {
        if (this.stopped) return;
        if (gone(err)) {
          this.resourceVersion = '';
        } else {
          await this.sleep(this.nextDelay(err));
          this.begin();
        }
      }
    }
  }

  private async watchOnce(): Promise<void> {
    if (this.stopped) return;
    this.abort = new AbortController();
    const started = { at: Date.now(), resourceVersion: this.resourceVersion };
    const timeoutSeconds = watchSeconds();
    // A connection that died without a word (HTTP/1.1 has no pings) ends the watch a minute after the API server would have.
    const deadline = setTimeout(() => this.abort?.abort(), (timeoutSeconds + 60) * 1000).unref();
    try {
      await watch<T>(this.kc, this.opts.path, {
        resourceVersion: this.resourceVersion, labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector, timeoutSeconds,
      }, (e) => this.apply(e), this.abort.signal);
    } finally {
      clearTimeout(deadline);
    }
    if (Date.now() - started.at < SHORT_WATCH_MS && this.resourceVersion === started.resourceVersion) {
      throw new KubeError(0, 'WatchClosedAtOnce', 'the watch ended at once without an event');
    }
  }

  private apply(e: WatchEvent<T>): void {
    const rv = e.object.metadata?.resourceVersion;
    if (e.type === 'DELETED') this.remove(e.object);
    else if (e.type !== 'BOOKMARK') this.put(e.object);
    // A bookmark only moves the resourceVersion.
    if (rv) this.resourceVersion = rv;
  }

  /** Lists and replaces the cache: deletes for what vanished, adds and updates for the rest. */
  private async relist(): Promise<void> {
    const r = await this.opts.list();
    const fresh = new Set(r.items.map(key));
    for (const obj of this.list()) if (!fresh.has(key(obj))) this.remove(obj);
    for (const obj of r.items) this.put(obj);
    this.resourceVersion = r.metadata?.resourceVersion ?? '';
    this.attempt.resourceVersion = this.resourceVersion;
  }

  /** Caches and delivers a new or changed object; the same resourceVersion again is no change. */
  private put(obj: T): void {
    // Before anyone sees it: nothing here reads managedFields, and it is a large part of every object (client-go's TransformStripManagedFields).
    delete obj.metadata?.managedFields;
    this.opts.transform?.(obj);
    const ns = obj.metadata?.namespace ?? '';
    let names = this.objects.get(ns);
    if (!names) this.objects.set(ns, names = new Map());
    const name = obj.metadata?.name ?? '';
    const old = names.get(name);
    if (old?.metadata?.resourceVersion !== undefined && old.metadata.resourceVersion === obj.metadata?.resourceVersion) return;
    names.set(name, obj);
    this.opts.onChange(obj);
  }

  private remove(obj: T): void {
    const ns = obj.metadata?.namespace ?? '';
    const names = this.objects.get(ns);
    if (!names?.delete(obj.metadata?.name ?? '')) return;
    if (names.size === 0) this.objects.delete(ns);
    delete obj.metadata?.managedFields;
    (this.opts.onDelete ?? this.opts.onChange)(obj);
  }

  private begin(): void {
    this.attempt = { at: Date.now(), resourceVersion: this.resourceVersion };
  }

  private nextDelay(err: unknown): number {
    const rv = this.resourceVersion;
    const ran = { ranMs: Date.now() - this.attempt.at, gotEvents: rv !== '' && rv !== this.attempt.resourceVersion };
    const restart = planRestart(this.restart, err, ran, { path: this.opts.path, server: this.server });
    this.restart = restart.state;
    this.opts.onRestart?.(err, restart.delayMs, restart);
    return restart.delayMs;
  }

  /** Waits, or less if stop() comes first. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.wake = undefined; resolve(); }, ms);
      this.wake = () => { clearTimeout(timer); resolve(); };
    });
  }
}

const key = (o: KubernetesObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
