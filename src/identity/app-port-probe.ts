// The app-port check of spec.proxy, as I/O: dial each proxied pod's IP on its
// identity's app port, once per pod and app restart (app-port.ts decides
// where and when), and keep what was found. The results are an input of the
// identity reconciler, which alone writes the AgentIdentity's status and
// events (one owner per concern); this controller records the Pod's events
// and the exposed-pods gauge. Its own queue and concurrency: a probe that
// waits out its timeout never holds up an identity's reconcile.
import { connect } from 'node:net';
import type { AgentIdentity, Pod } from '../api/types.ts';
import type { EventSink } from '../kube/events.ts';
import type { Mapper } from '../controller/controller.ts';
import { objectKey, splitKey } from '../controller/controller.ts';
import type { Metrics } from '../controller/metrics.ts';
import type { Result } from '../controller/queue.ts';
import { identityKeyOf, probeTarget, type AppPortProbe } from './app-port.ts';

/**
 * A refused connection answers at once; a dropped one (the NetworkPolicy
 * enforced) only times out, so this bounds every private pod's probe. 2 s is
 * far above a round trip inside a cluster.
 */
export const PROBE_TIMEOUT_MS = 2000;

/**
 * Probes at once. Each holds a socket and a queue slot for at most
 * PROBE_TIMEOUT_MS, so 32 check at least 16 pods a second (1,000 pods in about
 * a minute after the operator starts) with 32 sockets at most.
 */
export const PROBE_CONCURRENCY = 32;

/** Whether something accepts a TCP connection at address:port within timeoutMs. Never throws: refused, unreachable and timed out are all "no". */
export function answers(address: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port, timeout: timeoutMs });
    const done = (open: boolean) => { socket.destroy(); resolve(open); };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

/**
 * The last probe of each proxied pod, indexed by identity. One entry per
 * pod the controller saw with the label, removed when the pod goes, so memory
 * follows the live pods. Listeners hear the identity whose results moved.
 */
export class AppPortResults {
  readonly #byPod = new Map<string, { identity: string; probe?: AppPortProbe }>();
  readonly #byIdentity = new Map<string, Set<string>>();
  readonly #listeners: Array<(identity: string) => void> = [];
  #exposed = 0;

  onChange(listener: (identity: string) => void): void {
    this.#listeners.push(listener);
  }

  probeOf(pod: string): AppPortProbe | undefined {
    return this.#byPod.get(pod)?.probe;
  }

  /** The current probes of an identity's pods. */
  of(identity: string): AppPortProbe[] {
    return [...this.#byIdentity.get(identity) ?? []].flatMap((pod) => this.#byPod.get(pod)?.probe ?? []);
  }

  /** Every pod seen naming `identity`, probed or not: its spec changing (another appPort) concerns them. */
  podsOf(identity: string): string[] {
    return [...this.#byIdentity.get(identity) ?? []];
  }

  get exposed(): number {
    return this.#exposed;
  }

  /** `pod` names `identity`, and was probed (or is not probe-able now: `probe` undefined). */
  set(pod: string, identity: string, probe?: AppPortProbe): void {
    const old = this.#byPod.get(pod);
    if (old && old.identity === identity && sameFinding(old.probe, probe)) {
      old.probe = probe;
      return;
    }
    this.forget(pod);
    this.#byPod.set(pod, { identity, ...(probe ? { probe } : {}) });
    let pods = this.#byIdentity.get(identity);
    if (!pods) this.#byIdentity.set(identity, pods = new Set());
    pods.add(pod);
    if (probe?.exposed) this.#exposed++;
    this.#emit(identity);
  }

  forget(pod: string): void {
    const old = this.#byPod.get(pod);
    if (!old) return;
    this.#byPod.delete(pod);
    const pods = this.#byIdentity.get(old.identity)!;
    pods.delete(pod);
    if (pods.size === 0) this.#byIdentity.delete(old.identity);
    if (old.probe?.exposed) this.#exposed--;
    if (old.probe) this.#emit(old.identity);
  }

  #emit(identity: string): void {
    for (const l of this.#listeners) l(identity);
  }
}

/** Whether two probes tell the identity the same: only then is no one told. */
function sameFinding(a: AppPortProbe | undefined, b: AppPortProbe | undefined): boolean {
  if (!a || !b) return a === b;
  return a.exposed === b.exposed && a.port === b.port && a.address === b.address;
}

export interface AppPortProberDeps {
  pods: { get(name: string, namespace?: string): Pod | undefined };
  identities: { get(name: string, namespace?: string): AgentIdentity | undefined };
  results: AppPortResults;
  events: EventSink;
  metrics: Metrics;
  /** Default answers() with PROBE_TIMEOUT_MS. */
  dial?: (address: string, port: number) => Promise<boolean>;
}

/** The reconcile of a proxied pod (key namespace/name): probe it if its target moved since the last probe. */
export function appPortProber(d: AppPortProberDeps): (key: string) => Promise<Result> {
  const dial = d.dial ?? ((address: string, port: number) => answers(address, port, PROBE_TIMEOUT_MS));
  const gauge = () => d.metrics.appPortExposedPods.set(d.results.exposed);
  return async (key) => {
    const [namespace, name] = splitKey(key);
    const pod = d.pods.get(name, namespace);
    const identity = pod && identityKeyOf(pod);
    if (!pod || !identity) {
      d.results.forget(key);
      gauge();
      return {};
    }
    const [, identityName] = splitKey(identity);
    const target = probeTarget(pod, d.identities.get(identityName, namespace));
    const last = d.results.probeOf(key);
    if (target && last?.probeKey === target.probeKey) return {};
    if (!target) {
      // An app container restarting: its last finding stands until the restart is probed.
      if (last && pod.status?.phase === 'Running' && d.identities.get(identityName, namespace)?.spec.proxy) return {};
      d.results.set(key, identity);
      gauge();
      return {};
    }
    const exposed = await dial(target.address, target.port);
    d.results.set(key, identity, { pod: key, identity: target.identity, address: target.address, port: target.port, probeKey: target.probeKey, exposed });
    gauge();
    reportOnPod(d.events, pod, exposed, last?.exposed === true, target.port);
    return {};
  };
}

/** The Pod's side of the story; the identity's condition and events are the identity reconciler's. */
function reportOnPod(events: EventSink, pod: Pod, exposed: boolean, wasExposed: boolean, port: number): void {
  const ref = { apiVersion: 'v1', kind: 'Pod', metadata: pod.metadata };
  if (exposed) {
    events.record(ref, 'Warning', 'AppPortExposed',
      `the agent's app port ${port} answers on the pod IP ${pod.status?.podIP}, so other pods reach it without the identity proxy; bind it to 127.0.0.1 (the HOST variable the webhook sets)`);
  } else if (wasExposed) {
    events.record(ref, 'Normal', 'AppPortPrivate', `the agent's app port ${port} no longer answers on the pod IP ${pod.status?.podIP}`);
  }
}

/** An identity's spec changing (its appPort, spec.proxy itself) concerns the pods seen naming it. */
export const podsOfIdentity = (results: AppPortResults): Mapper<AgentIdentity> => (identity) => results.podsOf(objectKey(identity));
