// When a Pod is created with label agentidentity.dev/agent=<name>
//   → add the projected volume `agent-identity` (delivery.ts: the identity's Secret, or a
//     podCertificate source and the trust bundle ConfigMap; and its policy ConfigMap),
//   → mount it read-only at /var/run/agentidentity in every container (or those the annotation names),
//   → set the AGENT_IDENTITY_* variables that name the files and carry the SPIFFE ID,
//   → record what was injected in the agentidentity.dev/injected annotation.
// When its AgentIdentity has spec.proxy, the key stays out of the agent:
//   → the same volume, mounted only into the identity proxy, a native sidecar
//     added first among the initContainers (sidecar.ts),
//   → every container (or those the annotation names) gets the proxy
//     environment (HTTP_PROXY, NO_PROXY, a loopback bind address) and no mount,
//   → the pod is labelled agentidentity.dev/proxy=<name>, so that the operator
//     can check that the agent's plaintext port is not served on the pod IP.
//
// Pure: the pod and the AgentIdentity in, a JSON Patch out. The patch only
// adds what is missing and replaces what differs, so running it on a pod that
// already carries the injection (a re-invocation, a copied manifest, a pod read
// back from the API server with its defaults) yields an empty patch.
import { posix } from 'node:path';
import { DEFAULT_IDENTITY_DIR, ENV, FILES } from '../api/documents.ts';
import { deliveryOf, secretNameOf } from '../api/defaults.ts';
import { LABEL_PROXY, SIGNER_NAME } from '../api/group.ts';
import type { AgentIdentity, ProxyMode } from '../api/types.ts';
import { identitySources } from './delivery.ts';
import { type JSONPatchOp, pointer, sameJSON } from './jsonpatch.ts';
import { ANNOTATION_INJECT_CONTAINERS, ANNOTATION_INJECTED, IDENTITY_VOLUME, LABEL_AGENT, policyConfigMapName } from './names.ts';
import { type Container, type ContainerAt, containersOf, describePod, type EnvVar, type Pod, type Volume, type VolumeMount, type VolumeProjection } from './pod.ts';
import { AGENT_PROXY_ENV, PROXY_CONTAINER, proxyContainer, proxyModeOf, type ProxySidecarConfig, sameResources } from './sidecar.ts';

export type { JSONPatchOp } from './jsonpatch.ts';

export interface InjectOptions {
  /** Where the identity directory is mounted; default /var/run/agentidentity (the SDK's default too). */
  mountPath?: string;
  /** The identity proxy's image and resources (--proxy-image, --proxy-resources); absent: pods of an identity with spec.proxy are refused. */
  proxy?: ProxySidecarConfig;
}

/** What was injected; also the content of the agentidentity.dev/injected annotation. */
export interface InjectionSummary {
  identity: string;
  /** Absent while the identity has no certificate yet: the variable is then not set (see injectIdentity). */
  spiffeID?: string;
  /** Secret delivery: the Secret the volume projects. */
  secret?: string;
  /** Pod-certificate delivery: the signer the kubelet asks. */
  signerName?: string;
  /** Pod-certificate delivery: the ConfigMap policy.json comes from (Secret delivery: the Secret). */
  policy?: string;
  mountPath: string;
  /** The containers that mount the identity: with spec.proxy, the proxy alone. */
  containers: string[];
  /** With spec.proxy: the proxy's ports and the containers that got its environment. */
  proxy?: { port: number; appPort: number; mode: ProxyMode; agents: string[] };
}

export type InjectionRefusalReason = 'TooManyContainers' | 'UnsupportedKeyType' | 'ProxyImageNotConfigured' | 'ProxyContainerNameTaken';

export interface Injection {
  patch: JSONPatchOp[];
  summary: InjectionSummary;
  /** Set when the pod cannot take the injection at all; the patch is then empty. */
  refusal?: { reason: InjectionRefusalReason; message: string };
}

// The injection adds about 430 bytes to each container; past ~3,600 of them
// the pod could not be stored (etcd's 1.5 MiB object limit) anyway. No real
// pod comes near 1,000, and the bound keeps one answer under a megabyte and a
// few milliseconds instead of the 34 MB patch a 40,000-container pod asks for.
export const MAX_INJECTED_CONTAINERS = 1000;

// 0644, the API server's own default: written out so a pod read back from the
// API server compares equal to what we would add. Not narrower, because without
// fsGroup the files are owned by root and a non-root agent could not read them.
const DEFAULT_MODE = 0o644;

/** The AgentIdentity a pod asks for, or undefined when it did not opt in. */
export function requestedIdentity(pod: Pod): string | undefined {
  return pod.metadata.labels?.[LABEL_AGENT];
}

// An object name as the API server accepts it (a DNS-1123 subdomain): never
// "/" or "..", so safe in a URL path. The mutating webhook sees a pod before
// the API server validates its labels, so the label may hold anything.
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isObjectName(name: string): boolean {
  return name.length <= 253 && DNS1123_SUBDOMAIN.test(name);
}

/**
 * The container names of the inject-containers annotation, each once;
 * undefined when absent (meaning: all). A Set: every use is a membership test,
 * and the list is as long as the sender likes.
 */
export function requestedContainers(pod: Pod): Set<string> | undefined {
  const value = pod.metadata.annotations?.[ANNOTATION_INJECT_CONTAINERS];
  if (value === undefined) return undefined;
  // Once it names more containers than the pod has, one of them is missing whatever follows: stop reading there.
  const limit = (pod.spec.containers?.length ?? 0) + (pod.spec.initContainers?.length ?? 0) + 1;
  const names = new Set<string>();
  for (let start = 0; start <= value.length && names.size < limit;) {
    const comma = value.indexOf(',', start);
    const end = comma < 0 ? value.length : comma;
    const name = value.slice(start, end).trim();
    if (name) names.add(name);
    start = end + 1;
  }
  return names;
}

/** A mount of something other than our volume at the identity directory: that container cannot take the injection. */
export function foreignMountAt(container: Container, mountPath: string): VolumeMount | undefined {
  const clean = (p: string) => posix.normalize(p).replace(/(.)\/+$/, '$1');
  return container.volumeMounts?.find((m) => m.name !== IDENTITY_VOLUME && clean(m.mountPath) === clean(mountPath));
}

/**
 * The containers that receive the identity: every container and initContainer,
 * or only those the annotation names. Ephemeral containers are never created
 * with a pod, and one whose identity directory is taken by another volume is
 * left alone; validate.ts refuses such a pod and says why.
 */
export function targetContainers(pod: Pod, mountPath = DEFAULT_IDENTITY_DIR): ContainerAt[] {
  return namedContainers(pod).filter((c) => !foreignMountAt(c.container, mountPath));
}

/** With spec.proxy: the containers that get the proxy environment, the same choice less the proxy itself (nothing is mounted, so no mount is in the way). */
export function proxiedContainers(pod: Pod): ContainerAt[] {
  return namedContainers(pod).filter((c) => c.container.name !== PROXY_CONTAINER);
}

function namedContainers(pod: Pod): ContainerAt[] {
  const named = requestedContainers(pod);
  return containersOf(pod, ['containers', 'initContainers']).filter((c) => named === undefined || named.has(c.container.name));
}

function identityVolume(sources: VolumeProjection[]): Volume {
  return { name: IDENTITY_VOLUME, projected: { defaultMode: DEFAULT_MODE, sources } };
}

/** A whole-directory mount: never subPath, since subPath mounts do not see Secret or ConfigMap updates. */
function identityMount(mountPath: string): VolumeMount {
  return { name: IDENTITY_VOLUME, mountPath, readOnly: true };
}

function isOurMount(m: VolumeMount, mountPath: string): boolean {
  return m.mountPath === mountPath && m.readOnly === true && !m.subPath && !m.subPathExpr;
}

export function identityEnv(identity: AgentIdentity, mountPath: string): EnvVar[] {
  const file = (name: string) => posix.join(mountPath, name);
  // The key and chain files the delivery writes: the SDK reads the credential bundle when it is there.
  const credentials: EnvVar[] = deliveryOf(identity) === 'Secret'
    ? [{ name: ENV.certificate, value: file(FILES.certificate) }, { name: ENV.privateKey, value: file(FILES.privateKey) }]
    : [{ name: ENV.credentialBundle, value: file(FILES.credentialBundle) }];
  const env: EnvVar[] = [
    { name: ENV.dir, value: mountPath },
    ...credentials,
    { name: ENV.bundle, value: file(FILES.bundle) },
    { name: ENV.policy, value: file(FILES.policy) },
  ];
  // Not issued yet: the ID is not guessed from the TrustDomain template. The
  // pod waits for its certificate anyway, and the SDK reads the ID from it.
  if (identity.status?.spiffeID) env.push({ name: ENV.spiffeID, value: identity.status.spiffeID });
  return env;
}

// --- the patch, piece by piece: each returns only what is missing or differs

function ensureVolume(pod: Pod, volume: Volume): JSONPatchOp[] {
  const volumes = pod.spec.volumes;
  if (!volumes) return [{ op: 'add', path: pointer('spec', 'volumes'), value: [volume] }];
  const i = volumes.findIndex((v) => v.name === volume.name);
  if (i < 0) return [{ op: 'add', path: pointer('spec', 'volumes', '-'), value: volume }];
  // The name is reserved: a stale copy (another identity, another Secret name) is brought up to date.
  return sameJSON(volumes[i], volume) ? [] : [{ op: 'replace', path: pointer('spec', 'volumes', i), value: volume }];
}

function ensureMount(at: ContainerAt, mountPath: string): JSONPatchOp[] {
  const base = ['spec', at.list, at.index, 'volumeMounts'] as const;
  const mounts = at.container.volumeMounts;
  const mount = identityMount(mountPath);
  if (!mounts) return [{ op: 'add', path: pointer(...base), value: [mount] }];
  const i = mounts.findIndex((m) => m.name === IDENTITY_VOLUME);
  if (i < 0) return [{ op: 'add', path: pointer(...base, '-'), value: mount }];
  return isOurMount(mounts[i]!, mountPath) ? [] : [{ op: 'replace', path: pointer(...base, i), value: mount }];
}

function ensureEnv(at: ContainerAt, desired: readonly EnvVar[]): JSONPatchOp[] {
  const base = ['spec', at.list, at.index, 'env'] as const;
  const env = at.container.env;
  if (!env) return [{ op: 'add', path: pointer(...base), value: [...desired] }];
  const ops: JSONPatchOp[] = [];
  for (const want of desired) {
    const i = env.findIndex((e) => e.name === want.name);
    if (i < 0) ops.push({ op: 'add', path: pointer(...base, '-'), value: want });
    // These names are the SDK's contract: a value that points elsewhere would mislead the agent.
    else if (!sameJSON(env[i], want)) ops.push({ op: 'replace', path: pointer(...base, i), value: want });
  }
  return ops;
}

/**
 * The proxy sidecar, first among the initContainers. Its name is reserved: a
 * copy that differs in anything we set is replaced whole. Fields we do not
 * set (the API server's defaults) are not compared, and quantities are
 * compared by value, so a pod read back needs no patch. Emitted after every operation that addresses an initContainer by
 * index, since inserting at 0 shifts them.
 */
function ensureSidecar(pod: Pod, sidecar: Container): JSONPatchOp[] {
  const list = pod.spec.initContainers;
  if (!list) return [{ op: 'add', path: pointer('spec', 'initContainers'), value: [sidecar] }];
  const i = list.findIndex((c) => c.name === sidecar.name);
  if (i < 0) return [{ op: 'add', path: pointer('spec', 'initContainers', 0), value: sidecar }];
  const current = list[i]!;
  const carries = Object.entries(sidecar).every(([field, value]) => (field === 'resources' ? sameResources(current[field], value) : sameJSON(current[field], value)));
  return carries ? [] : [{ op: 'replace', path: pointer('spec', 'initContainers', i), value: sidecar }];
}

function ensureAnnotation(pod: Pod, summary: InjectionSummary): JSONPatchOp[] {
  return ensureMetadata(pod, 'annotations', ANNOTATION_INJECTED, JSON.stringify(summary));
}

function ensureMetadata(pod: Pod, field: 'annotations' | 'labels', key: string, value: string): JSONPatchOp[] {
  const entries = pod.metadata[field];
  if (!entries) return [{ op: 'add', path: pointer('metadata', field), value: { [key]: value } }];
  return entries[key] === value ? [] : [{ op: 'add', path: pointer('metadata', field, key), value }];
}

/**
 * The JSON Patch that gives `pod` the identity. When no container can take it
 * (the annotation names none of them), the patch is empty and validate.ts
 * refuses the pod with the reason.
 */
export function injectIdentity(pod: Pod, identity: AgentIdentity, opts: InjectOptions = {}): Injection {
  if (identity.spec.proxy) return injectProxy(pod, identity, opts);
  const mountPath = opts.mountPath ?? DEFAULT_IDENTITY_DIR;
  const targets = targetContainers(pod, mountPath);
  const summary = summaryOf(identity, mountPath, targets.map((t) => t.container.name));
  if (targets.length === 0) return { patch: [], summary };
  const tooMany = tooManyContainers(pod, targets);
  if (tooMany) return { patch: [], summary, refusal: tooMany };
  const volume = identitySources(identity);
  if ('refusal' in volume) return { patch: [], summary, refusal: volume.refusal };
  const env = identityEnv(identity, mountPath);
  return {
    patch: [
      ...ensureVolume(pod, identityVolume(volume.sources)),
      ...targets.flatMap((t) => [...ensureMount(t, mountPath), ...ensureEnv(t, env)]),
      ...ensureAnnotation(pod, summary),
    ],
    summary,
  };
}

function summaryOf(identity: AgentIdentity, mountPath: string, containers: string[]): InjectionSummary {
  return {
    identity: identity.metadata.name!,
    ...(identity.status?.spiffeID ? { spiffeID: identity.status.spiffeID } : {}),
    ...(deliveryOf(identity) === 'Secret' ? { secret: secretNameOf(identity) } : { signerName: SIGNER_NAME, policy: policyConfigMapName(identity.metadata.name!) }),
    mountPath,
    containers,
  };
}

function tooManyContainers(pod: Pod, targets: ContainerAt[]): Injection['refusal'] {
  if (targets.length <= MAX_INJECTED_CONTAINERS) return undefined;
  const message = `${describePod(pod)} would carry the identity in ${targets.length} containers, more than the ${MAX_INJECTED_CONTAINERS} the webhook injects into; name the ones that need it with the annotation ${ANNOTATION_INJECT_CONTAINERS}`;
  return { reason: 'TooManyContainers', message };
}

/**
 * spec.proxy: the identity goes to the proxy sidecar alone, the agent's
 * containers get the proxy environment. Whether another container still
 * reaches the identity (a volume of the pod's own) is validate.ts's to refuse.
 */
function injectProxy(pod: Pod, identity: AgentIdentity, opts: InjectOptions): Injection {
  const proxy = identity.spec.proxy!;
  const mountPath = opts.mountPath ?? DEFAULT_IDENTITY_DIR;
  const agents = proxiedContainers(pod);
  const summary: InjectionSummary = {
    ...summaryOf(identity, mountPath, [PROXY_CONTAINER]),
    proxy: { port: proxy.port, appPort: proxy.appPort, mode: proxyModeOf(proxy), agents: agents.map((t) => t.container.name) },
  };
  const refuse = (reason: InjectionRefusalReason, message: string): Injection => ({ patch: [], summary, refusal: { reason, message } });
  if (!opts.proxy) {
    return refuse('ProxyImageNotConfigured', `AgentIdentity "${identity.metadata.name}" has spec.proxy, but the operator was started without a proxy image, so ${describePod(pod)} cannot get its proxy; set the chart value proxy.image (operator flag --proxy-image), or remove spec.proxy`);
  }
  const taken = containersOf(pod, ['containers', 'ephemeralContainers']).find((c) => c.container.name === PROXY_CONTAINER);
  if (taken) {
    return refuse('ProxyContainerNameTaken', `${describePod(pod)} has a ${taken.list === 'containers' ? 'container' : 'ephemeralContainer'} named "${PROXY_CONTAINER}", the name of the identity proxy the webhook adds for AgentIdentity "${identity.metadata.name}"; rename it`);
  }
  const tooMany = tooManyContainers(pod, agents);
  if (tooMany) return { patch: [], summary, refusal: tooMany };
  const volume = identitySources(identity);
  if ('refusal' in volume) return { patch: [], summary, refusal: volume.refusal };
  const sidecar = proxyContainer(proxy, opts.proxy, identityMount(mountPath), identityEnv(identity, mountPath));
  return {
    patch: [
      ...ensureVolume(pod, identityVolume(volume.sources)),
      ...agents.flatMap((t) => ensureEnv(t, AGENT_PROXY_ENV)),
      ...ensureSidecar(pod, sidecar),
      // The operator watches only pods with this label, to check that the app port is not served on the pod IP.
      ...ensureMetadata(pod, 'labels', LABEL_PROXY, identity.metadata.name!),
      ...ensureAnnotation(pod, summary),
    ],
    summary,
  };
}
