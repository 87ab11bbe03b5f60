// The app-port check of spec.proxy, as decisions: which pod to probe where,
// and what the probes say about the identity (its AppPortPrivate condition).
// Pure; app-port-probe.ts dials and keeps the results.
//
// Why the operator checks, not the proxy: the proxy holds no API credentials
// by design (key isolation, least privilege: nothing in a tenant pod may write
// to the API), so it could not report. And a dial from outside the pod tests
// what matters: whether another pod reaches the plaintext port on the pod IP,
// which also catches a CNI that does not enforce the identity's NetworkPolicy.
import { LABEL_PROXY } from '../api/group.ts';
import { PROXY_CONTAINER } from '../api/names.ts';
import type { ConditionInput } from '../api/conditions.ts';
import type { AgentIdentity, Pod } from '../api/types.ts';

export const APP_PORT_CONDITION = 'AppPortPrivate';

/** Where to dial one pod, and what makes this probe different from the last (a new pod, a restarted app, another port). */
export interface ProbeTarget {
  /** The identity's key (namespace/name). */
  identity: string;
  address: string;
  port: number;
  probeKey: string;
}

/** What one probe found. */
export interface AppPortProbe {
  pod: string;
  identity: string;
  address: string;
  port: number;
  probeKey: string;
  exposed: boolean;
}

/** The identity a proxied pod names (its LABEL_PROXY, in its own namespace). */
export function identityKeyOf(pod: Pod): string | undefined {
  const name = pod.metadata.labels?.[LABEL_PROXY];
  return name ? `${pod.metadata.namespace}/${name}` : undefined;
}

/**
 * Whether and where to probe `pod`. The label is the pod's to change, so it is
 * trusted only as far as what the webhook admitted and the API server keeps
 * immutable agrees: the identity must have spec.proxy (the port comes from its
 * spec, never from the pod), the pod must run as its ServiceAccount and carry
 * the proxy sidecar. Then only once the pod runs, has an IP, its proxy has
 * started and every app container has started: an app that has not bound yet
 * would look private. Restarts are in the key: an app that restarts may bind
 * differently.
 */
export function probeTarget(pod: Pod, identity: AgentIdentity | undefined): ProbeTarget | undefined {
  const proxy = identity?.spec.proxy;
  const s = pod.status;
  if (!identity || !proxy || pod.metadata.deletionTimestamp) return undefined;
  if ((pod.spec?.serviceAccountName ?? 'default') !== identity.spec.serviceAccountName) return undefined;
  if (!pod.spec?.initContainers?.some((c) => c.name === PROXY_CONTAINER)) return undefined;
  if (s?.phase !== 'Running' || !s.podIP) return undefined;
  if (!s.initContainerStatuses?.some((c) => c.name === PROXY_CONTAINER && c.started)) return undefined;
  const apps = s.containerStatuses ?? [];
  if (apps.length === 0 || !apps.every((c) => c.started)) return undefined;
  const restarts = apps.reduce((n, c) => n + (c.restartCount ?? 0), 0);
  return {
    identity: `${identity.metadata.namespace}/${identity.metadata.name}`,
    address: s.podIP, port: proxy.appPort,
    probeKey: `${pod.metadata.uid}/${restarts}/${s.podIP}/${proxy.appPort}`,
  };
}

/** Pods named in a condition message; the rest are counted. */
const NAMED = 5;

/**
 * The identity's AppPortPrivate condition from its pods' probes, or undefined
 * when it has no spec.proxy (no condition). `probes` undefined: the operator
 * cannot watch pods. Only probes of the current appPort count.
 */
export function appPortCondition(identity: AgentIdentity, probes: readonly AppPortProbe[] | undefined): Omit<ConditionInput, 'observedGeneration'> | undefined {
  const port = identity.spec.proxy?.appPort;
  if (port === undefined) return undefined;
  const type = APP_PORT_CONDITION;
  if (!probes) {
    return { type, status: 'Unknown', reason: 'AppPortUnchecked', message: `the operator may not list and watch pods (see its log), so it cannot check that app port ${port} is closed on the pod IP; grant the chart's RBAC for pods` };
  }
  const current = probes.filter((p) => p.port === port);
  const exposed = current.filter((p) => p.exposed).sort((a, b) => a.pod.localeCompare(b.pod));
  if (exposed.length) {
    const named = exposed.slice(0, NAMED).map((p) => `${p.pod} (${p.address}:${p.port})`).join(', ');
    const more = exposed.length > NAMED ? ` and ${exposed.length - NAMED} more` : '';
    return {
      type, status: 'False', reason: 'AppPortExposed',
      message: `app port ${port} answers on the pod IP of ${exposed.length} pod(s): ${named}${more}; other pods can reach the agent there in plaintext, without the proxy. Bind the app to 127.0.0.1 (the webhook sets HOST=127.0.0.1; see docs/proxy.md), and check that the cluster's network plugin enforces NetworkPolicies`,
    };
  }
  if (current.length) return { type, status: 'True', reason: 'AppPortPrivate', message: `app port ${port} answers on no probed pod's IP` };
  return { type, status: 'Unknown', reason: 'NotProbed', message: `no running pod of this identity has been probed on app port ${port} yet` };
}
