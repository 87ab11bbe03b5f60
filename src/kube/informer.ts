// A list-watch cache that does not stay dead. client-node's ListWatch stops on
// any watch error; this restarts it with capped, jittered exponential backoff
// (restart.ts decides), relists on 410 Gone (ListWatch clears its
// resourceVersion for that), and re-delivers every cached object each resync
// period as a safety net against missed events — the same contract as
// client-go's shared informer. Watches share the process's connection pool
// (transport.ts) but not its rate limit.
import { ListWatch, Watch, type KubeConfig, type KubernetesObject, type KubernetesListObject } from '@kubernetes/client-node';
import { planRestart, HEALTHY, type Restart, type RestartState } from './restart.ts';
import { watchConfig } from './transport.ts';

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
  /** Each failed attempt, with the delay before the next and what to log. */
  onRestart?: (err: unknown, delayMs: number, restart: Restart) => void;
}

export class Informer<T extends KubernetesObject> {
  readonly name: string;
  private readonly lw: ListWatch<T>;
  private readonly opts: InformerOptions<T>;
  private synced = false;
  private listed = false;
  private lastError: unknown;
  private stopped = false;
  private restart: RestartState = HEALTHY;
  /** When the current attempt began, and the resourceVersion it began (or listed) at. */
  private attempt = { at: 0, resourceVersion: '' };
  private readonly server: string;
  private restartTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;

  constructor(kc: KubeConfig, opts: InformerOptions<T>) {
    this.name = opts.name;
    this.opts = opts;
    // ListWatch swallows list failures (it reports them via 'error' and
    // returns), so record success to know whether start() really synced.
    // The list's resourceVersion is where the watch starts: only a watch
    // event moves it further.
    const list = async () => {
      const r = await opts.list();
      this.listed = true;
      this.attempt.resourceVersion = r.metadata?.resourceVersion ?? '';
      return r;
    };
    this.lw = new ListWatch<T>(opts.path, new Watch(watchConfig(kc)), list, false, opts.labelSelector, opts.fieldSelector);
    this.server = kc.getCurrentCluster()?.server ?? 'unknown';
    // First, so the cached object is stripped before anyone sees it.
    this.lw.on('add', stripManagedFields);
    this.lw.on('update', stripManagedFields);
    this.lw.on('add', opts.onChange);
    this.lw.on('update', opts.onChange);
    this.lw.on('delete', opts.onDelete ?? opts.onChange);
    this.lw.on('error', (err) => { this.lastError = err; this.scheduleRestart(err); });
  }

  /** Resolves once the first list has filled the cache; keeps retrying until then. */
  async start(): Promise<void> {
    this.stopped = false;
    while (!this.stopped && !this.synced) {
      this.listed = false;
      this.lastError = undefined;
      this.begin();
      await this.lw.start().catch((e: unknown) => { this.lastError = e; });
      if (this.listed) {
        this.synced = true;
      } else {
        const delay = this.nextDelay(this.lastError);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    if (!this.synced) return;
    const resync = this.opts.onResync ?? this.opts.onChange;
    this.resyncTimer = setInterval(() => this.lw.list().forEach((o) => resync(o)), this.opts.resyncMs);
    this.resyncTimer.unref();
  }

  hasSynced(): boolean {
    return this.synced;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.lw.list(namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearInterval(this.resyncTimer);
    await this.lw.stop();
  }

  private begin(): void {
    this.attempt = { at: Date.now(), resourceVersion: this.lw.latestResourceVersion() };
  }

  private nextDelay(err: unknown): number {
    const rv = this.lw.latestResourceVersion();
    const ran = { ranMs: Date.now() - this.attempt.at, gotEvents: rv !== '' && rv !== this.attempt.resourceVersion };
    const restart = planRestart(this.restart, err, ran, { path: this.opts.path, server: this.server });
    this.restart = restart.state;
    this.opts.onRestart?.(err, restart.delayMs, restart);
    return restart.delayMs;
  }

  // Before the first list succeeded start() retries; after it, a failed watch
  // (even one in the very attempt that listed) is restarted here.
  private scheduleRestart(err: unknown): void {
    if (this.stopped || !this.listed) return;
    const delay = this.nextDelay(err);
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (this.stopped) return;
      this.begin();
      this.lw.start().catch((e) => this.scheduleRestart(e));
    }, delay);
  }
}

/**
 * Nothing here reads managedFields, and it is a large part of every object:
 * the cache drops it (client-go's TransformStripManagedFields). ListWatch
 * caches the very object it hands to its add/update callbacks.
 */
function stripManagedFields(obj: KubernetesObject): void {
  delete obj.metadata?.managedFields;
}
