// Kubernetes Events for the story `kubectl describe` tells. Identical events
// for the same object are collapsed for a while, so a retrying failure does
// not write one Event per attempt. As client-go's broadcaster, recording never
// waits for the API: events queue and a background writer sends them, paced
// by a budget of their own, so a reconcile neither waits on an Event nor
// spends its requests on one.
import { createHash } from 'node:crypto';
import type { CoreV1Event } from '@kubernetes/client-node';
import type { ObjectMeta } from '../api/types.ts';
import type { KubeClient } from './client.ts';
import { TokenBucket, type RateLimit } from './ratelimit.ts';

export type EventType = 'Normal' | 'Warning';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
}

export interface EventSink {
  /** Queues the event; it is written in the background, best effort. */
  record(target: EventTarget, type: EventType, reason: string, message: string): void;
}

export interface EventRecorderOptions {
  /** The writer's own request budget (client-go gives the broadcaster its own client, so its own limiter). */
  rate: RateLimit;
  /** Events queued beyond this are dropped, as client-go's broadcaster drops when its queue is full. */
  maxQueued?: number;
  /** Called with each failed write and each drop. */
  onError: (err: unknown) => void;
  /** Distinct events remembered for collapsing; the oldest is forgotten first (default RECENT_MAX). */
  maxRecent?: number;
}

const SUPPRESS_MS = 10 * 60_000;
/**
 * client-go's event correlator remembers 4096 events (maxLruCacheEntries). Forgetting one
 * early only lets an identical event through again; remembering every identity's last
 * message for 10 minutes held ~180 B per identity and, past 10,000, scanned them all per event.
 */
export const RECENT_MAX = 4096;
const MAX_MESSAGE = 1024;
const MAX_QUEUED = 1000;
/** Writes in flight at once: enough to keep up with a burst over one HTTP/2 connection. */
const WRITERS = 4;

export class EventRecorder implements EventSink {
  private readonly kube: Pick<KubeClient, 'createEvent'>;
  private readonly component: string;
  /** A digest of (object, type, reason, message) → when it was last written; in the order written, oldest first. */
  private readonly recent = new Map<string, number>();
  private readonly opts: EventRecorderOptions;
  private readonly bucket: TokenBucket;
  private readonly queue: CoreV1Event[] = [];
  /** Writers running; counted down in the same step that finds the queue empty, so a new event never waits for a writer that is leaving. */
  private active = 0;
  private readonly writers = new Set<Promise<void>>();

  constructor(kube: Pick<KubeClient, 'createEvent'>, component: string, opts: EventRecorderOptions) {
    this.kube = kube;
    this.component = component;
    this.opts = opts;
    this.bucket = new TokenBucket(opts.rate);
  }

  record(target: EventTarget, type: EventType, reason: string, message: string): void {
    // A digest, not the text: the message is not kept once the event is written.
    const key = createHash('sha1').update(`${target.metadata.uid}/${type}/${reason}/${message}`).digest('base64');
    const now = Date.now();
    const last = this.recent.get(key);
    if (last !== undefined && now - last < SUPPRESS_MS) return;
    if (this.queue.length >= (this.opts.maxQueued ?? MAX_QUEUED)) {
      this.opts.onError(new Error(`event queue full (${this.queue.length}): dropped ${type} ${reason} for ${target.kind} ${target.metadata.name}`));
      return;
    }
    this.remember(key, now);
    // Cluster-scoped objects' events go to "default", as kubectl expects.
    const namespace = target.metadata.namespace ?? 'default';
    const ts = new Date(now);
    this.queue.push({
      metadata: { generateName: `${target.metadata.name}.`, namespace },
      involvedObject: {
        apiVersion: target.apiVersion, kind: target.kind, name: target.metadata.name,
        namespace: target.metadata.namespace, uid: target.metadata.uid, resourceVersion: target.metadata.resourceVersion,
      },
      type, reason, message: message.slice(0, MAX_MESSAGE),
      firstTimestamp: ts, lastTimestamp: ts, count: 1,
      source: { component: this.component },
      reportingComponent: this.component, reportingInstance: this.component,
    });
    if (this.active < WRITERS) {
      const writer: Promise<void> = this.write().finally(() => this.writers.delete(writer));
      this.writers.add(writer);
    }
  }

  /** Resolves once every queued event was written (or failed), or after `timeoutMs`: an unreachable API server must not hold up shutdown. */
  async flush(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((r) => { timer = setTimeout(r, timeoutMs); });
    const drained = (async () => { while (this.writers.size) await Promise.all(this.writers); })();
    await Promise.race([drained, deadline]).finally(() => clearTimeout(timer));
  }

  private async write(): Promise<void> {
    this.active++;
    try {
      for (let event = this.queue.shift(); event; event = this.queue.shift()) {
        const waitMs = this.bucket.take();
        if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
        // Events are best effort: failing to record one must never fail a reconcile.
        await this.kube.createEvent(event).catch(this.opts.onError);
      }
    } finally {
      this.active--;
    }
  }

  /** Keeps the map in time order (delete, then set at the end), so forgetting is from the front and O(1) per event. */
  private remember(key: string, now: number): void {
    this.recent.delete(key);
    this.recent.set(key, now);
    const max = this.opts.maxRecent ?? RECENT_MAX;
    for (const [k, t] of this.recent) {
      if (this.recent.size <= max && now - t < SUPPRESS_MS) break;
      this.recent.delete(k);
    }
  }

  /** Distinct events remembered for collapsing (tests). */
  remembered(): number {
    return this.recent.size;
  }
}
