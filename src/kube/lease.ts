// Leader election on a coordination.k8s.io Lease, with client-go's rules:
// a lease is expired only when its record has not changed for a full lease
// duration as observed on this replica's own clock (so clock skew between
// replicas cannot hand leadership to two at once), the leader renews every
// retry period, and gives up the moment it cannot renew within the deadline.
import type { V1Lease } from '@kubernetes/client-node';
import type { KubeClient } from './client.ts';
import { isConflict, isNotFound } from './errors.ts';

export interface LeaseOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  onError?: (err: unknown) => void;
}

export class LeaderElector {
  private readonly kube: Pick<KubeClient, 'getLease' | 'createLease' | 'replaceLease'>;
  private readonly o: LeaseOptions;
  private observed?: { record: string; at: number };
  private leading = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private lastRenew = 0;

  constructor(kube: Pick<KubeClient, 'getLease' | 'createLease' | 'replaceLease'>, o: LeaseOptions) {
    this.kube = kube;
    this.o = o;
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  /** Stops campaigning; a leader releases the lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    const lease = await this.kube.getLease(this.o.namespace, this.o.name).catch(() => undefined);
    if (lease?.spec?.holderIdentity === this.o.identity) {
      lease.spec = { ...lease.spec, holderIdentity: undefined, leaseDurationSeconds: 1 };
      await this.kube.replaceLease(lease).catch(() => undefined);
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    let ok = false;
    try {
      ok = await this.withinRenewDeadline(this.tryAcquireOrRenew());
    } catch (err) {
      this.o.onError?.(err);
    }
    const now = Date.now();
    if (ok) {
      this.lastRenew = now;
      if (!this.leading) {
        this.leading = true;
        this.o.onStartedLeading();
      }
    } else if (this.leading && now - this.lastRenew >= this.o.renewDeadlineMs) {
      this.leading = false;
      this.o.onStoppedLeading();
      return;
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.o.retryPeriodMs);
  }

  /**
   * A leader's try counts as failed once its renew deadline has passed, even
   * if a request of it still waits on a dead connection: a leader cut off from
   * the API server steps down before its Lease can pass to another replica
   * (client-go bounds its renew loop by the deadline alike).
   */
  private withinRenewDeadline(attempt: Promise<boolean>): Promise<boolean> {
    if (!this.leading) return attempt;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), this.lastRenew + this.o.renewDeadlineMs - Date.now()); });
    return Promise.race([attempt, late]).finally(() => clearTimeout(timer));
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.o;
    // Lease times are MicroTime: the API server refuses millisecond precision.
    const now = new MicroTime();
    const spec = (acquire: boolean, prev?: V1Lease['spec']) => ({
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.o.leaseDurationMs / 1000),
      acquireTime: acquire ? now : prev?.acquireTime,
      renewTime: now,
      leaseTransitions: (prev?.leaseTransitions ?? 0) + (acquire && prev ? 1 : 0),
    });
    let lease: V1Lease;
    try {
      lease = await this.kube.getLease(namespace, name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.kube.createLease({ metadata: { name, namespace }, spec: spec(true) });
      return true;
    }
    const record = JSON.stringify([lease.spec?.holderIdentity, lease.spec?.renewTime, lease.spec?.leaseDurationSeconds]);
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
    const holder = lease.spec?.holderIdentity;
    const durationMs = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    const expired = !holder || this.observed.at + durationMs < Date.now();
    if (holder !== identity && !expired) return false;
    lease.spec = spec(holder !== identity, lease.spec);
    try {
      // resourceVersion from the read makes this a compare-and-swap: two candidates cannot both win.
      await this.kube.replaceLease(lease);
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
    return true;
  }
}

/** A Date that serialises with microseconds, as metav1.MicroTime must (client-node's V1MicroTime). */
class MicroTime extends Date {
  override toISOString(): string {
    return `${super.toISOString().slice(0, -1)}000Z`;
  }
}
