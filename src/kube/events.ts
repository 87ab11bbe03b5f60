// Kubernetes Events for the story `kubectl describe` tells. Identical events
// for the same object are collapsed for a while, so a retrying failure does
// not write one Event per attempt.
import type { CoreV1Event } from '@kubernetes/client-node';
import type { ObjectMeta } from '../api/types.ts';
import type { KubeClient } from './client.ts';

export type EventType = 'Normal' | 'Warning';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
}

export interface EventSink {
  record(target: EventTarget, type: EventType, reason: string, message: string): Promise<void>;
}

const SUPPRESS_MS = 10 * 60_000;
const MAX_MESSAGE = 1024;

export class EventRecorder implements EventSink {
  private readonly kube: Pick<KubeClient, 'createEvent'>;
  private readonly component: string;
  private readonly recent = new Map<string, number>();
  private readonly onError: (err: unknown) => void;

  constructor(kube: Pick<KubeClient, 'createEvent'>, component: string, onError: (err: unknown) => void) {
    this.kube = kube;
    this.component = component;
    this.onError = onError;
  }

  async record(target: EventTarget, type: EventType, reason: string, message: string): Promise<void> {
    const key = `${target.metadata.uid}/${type}/${reason}/${message}`;
    const now = Date.now();
    const last = this.recent.get(key);
    if (last !== undefined && now - last < SUPPRESS_MS) return;
    this.recent.set(key, now);
    if (this.recent.size > 10_000) this.prune(now);
    // Cluster-scoped objects' events go to "default", as kubectl expects.
    const namespace = target.metadata.namespace ?? 'default';
    const ts = new Date(now);
    const body: CoreV1Event = {
      metadata: { generateName: `${target.metadata.name}.`, namespace },
      involvedObject: {
        apiVersion: target.apiVersion, kind: target.kind, name: target.metadata.name,
        namespace: target.metadata.namespace, uid: target.metadata.uid, resourceVersion: target.metadata.resourceVersion,
      },
      type, reason, message: message.slice(0, MAX_MESSAGE),
      firstTimestamp: ts, lastTimestamp: ts, count: 1,
      source: { component: this.component },
      reportingComponent: this.component, reportingInstance: this.component,
    };
    // Events are best effort: failing to record one must never fail a reconcile.
    await this.kube.createEvent(body).catch(this.onError);
  }

  private prune(now: number): void {
    for (const [k, t] of this.recent) if (now - t >= SUPPRESS_MS) this.recent.delete(k);
  }
}
