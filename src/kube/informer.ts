// A list-watch cache that does not stay dead. client-node's ListWatch stops on
// any watch error; this restarts it with capped exponential backoff, relists
// on 410 Gone (ListWatch clears its resourceVersion for that), and
// re-delivers every cached object each resync period as a safety net against
// missed events — the same contract as client-go's shared informer.
import { ListWatch, Watch, type KubeConfig, type KubernetesObject, type KubernetesListObject } from '@kubernetes/client-node';

export interface InformerOptions<T extends KubernetesObject> {
  name: string;
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  resyncMs: number;
  onChange: (obj: T) => void;
  onDelete?: (obj: T) => void;
  /** Called for every cached object each resync period; defaults to onChange. */
  onResync?: (obj: T) => void;
  onRestart?: (err: unknown, delayMs: number) => void;
  backoff?: { baseMs: number; maxMs: number };
}

export class Informer<T extends KubernetesObject> {
  readonly name: string;
  private readonly lw: ListWatch<T>;
  private readonly opts: InformerOptions<T>;
  private synced = false;
  private listed = false;
  private lastError: unknown;
  private stopped = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;

  constructor(kc: KubeConfig, opts: InformerOptions<T>) {
    this.name = opts.name;
    this.opts = opts;
    // ListWatch swallows list failures (it reports them via 'error' and
    // returns), so record success to know whether start() really synced.
    const list = async () => { const r = await opts.list(); this.listed = true; return r; };
    this.lw = new ListWatch<T>(opts.path, new Watch(kc), list, false, opts.labelSelector);
    this.lw.on('add', opts.onChange);
    this.lw.on('update', opts.onChange);
    this.lw.on('delete', opts.onDelete ?? opts.onChange);
    this.lw.on('connect', () => { if (this.synced) this.failures = 0; });
    this.lw.on('error', (err) => { this.lastError = err; this.scheduleRestart(err); });
  }

  /** Resolves once the first list has filled the cache; keeps retrying until then. */
  async start(): Promise<void> {
    this.stopped = false;
    while (!this.stopped && !this.synced) {
      this.listed = false;
      this.lastError = undefined;
      await this.lw.start().catch((e: unknown) => { this.lastError = e; });
      if (this.listed) {
        this.synced = true;
      } else {
        const delay = this.nextDelay();
        this.opts.onRestart?.(this.lastError, delay);
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

  private nextDelay(): number {
    const { baseMs, maxMs } = this.opts.backoff ?? { baseMs: 500, maxMs: 30_000 };
    this.failures++;
    return Math.min(maxMs, baseMs * 2 ** (this.failures - 1));
  }

  private scheduleRestart(err: unknown): void {
    if (this.stopped || !this.synced) return;
    const delay = this.nextDelay();
    this.opts.onRestart?.(err, delay);
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (!this.stopped) this.lw.start().catch((e) => this.scheduleRestart(e));
    }, delay);
  }
}
