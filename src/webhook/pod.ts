// The subset of core/v1 Pod the webhook reads, as it arrives in an
// AdmissionReview (plain JSON), and the walks over it that both rules share:
// which containers there are, which Secrets a pod reaches, who it runs as.
import type { ObjectMeta } from '../api/types.ts';

export interface KeyToPath { key: string; path: string; mode?: number }

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name?: string; key: string; optional?: boolean }; [field: string]: unknown };
}

export interface EnvFromSource {
  prefix?: string;
  secretRef?: { name?: string; optional?: boolean };
  configMapRef?: { name?: string; optional?: boolean };
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
  subPathExpr?: string;
  [field: string]: unknown;
}

export interface Container {
  name: string;
  env?: EnvVar[];
  envFrom?: EnvFromSource[];
  volumeMounts?: VolumeMount[];
  [field: string]: unknown;
}

export interface VolumeProjection {
  secret?: { name?: string; items?: KeyToPath[]; optional?: boolean };
  configMap?: { name?: string; items?: KeyToPath[]; optional?: boolean };
  [source: string]: unknown;
}

export interface Volume {
  name: string;
  secret?: { secretName?: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  projected?: { sources?: VolumeProjection[]; defaultMode?: number };
  [source: string]: unknown;
}

export interface PodSpec {
  serviceAccountName?: string;
  /** Deprecated alias of serviceAccountName that the API server still honours. */
  serviceAccount?: string;
  volumes?: Volume[];
  containers: Container[];
  initContainers?: Container[];
  ephemeralContainers?: Container[];
  [field: string]: unknown;
}

export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta & { generateName?: string };
  spec: PodSpec;
}

export type ContainerList = 'containers' | 'initContainers' | 'ephemeralContainers';

export interface ContainerAt {
  container: Container;
  list: ContainerList;
  index: number;
}

const KIND_OF: Record<ContainerList, string> = { containers: 'container', initContainers: 'initContainer', ephemeralContainers: 'ephemeralContainer' };

/** Every container of the pod with where it sits, in spec order: containers, initContainers, ephemeralContainers. */
export function containersOf(pod: Pod, lists: ContainerList[] = ['containers', 'initContainers', 'ephemeralContainers']): ContainerAt[] {
  return lists.flatMap((list) => (pod.spec[list] ?? []).map((container, index) => ({ container, list, index })));
}

export function describeContainer(c: ContainerAt): string {
  return `${KIND_OF[c.list]} "${c.container.name}"`;
}

/** The ServiceAccount the pod runs as: what the ServiceAccount admission plugin would set. */
export function serviceAccountOf(pod: Pod): string {
  return pod.spec.serviceAccountName || pod.spec.serviceAccount || 'default';
}

/**
 * At most `max` characters of a value the requester chose, for messages: the
 * mutating webhook sees a pod before the API server validates it.
 */
export function clip(value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}

/** "pod \"web\"", or "pod \"web-7d9f-*\"" while only generateName is known (pods made by controllers). */
export function describePod(pod: Pod): string {
  const name = (n: string) => clip(n, 253);
  if (pod.metadata.name) return `pod "${name(pod.metadata.name)}"`;
  if (pod.metadata.generateName) return `pod "${name(pod.metadata.generateName)}*"`;
  return 'the pod';
}

/** One place a pod names a Secret, described the way a person would look for it in the manifest. */
export interface SecretReference {
  secretName: string;
  where: string;
}

/**
 * Every Secret the pod's own spec makes readable inside it: secret volumes,
 * secret sources of projected volumes, env valueFrom.secretKeyRef and
 * envFrom.secretRef of every kind of container.
 */
export function secretReferencesOf(pod: Pod): SecretReference[] {
  const refs: SecretReference[] = [];
  for (const v of pod.spec.volumes ?? []) {
    if (v.secret?.secretName) refs.push({ secretName: v.secret.secretName, where: `volume "${v.name}"` });
    for (const s of v.projected?.sources ?? []) {
      if (s.secret?.name) refs.push({ secretName: s.secret.name, where: `projected volume "${v.name}"` });
    }
  }
  for (const c of containersOf(pod)) {
    for (const e of c.container.env ?? []) {
      const name = e.valueFrom?.secretKeyRef?.name;
      if (name) refs.push({ secretName: name, where: `env ${e.name} of ${describeContainer(c)}` });
    }
    for (const e of c.container.envFrom ?? []) {
      if (e.secretRef?.name) refs.push({ secretName: e.secretRef.name, where: `envFrom of ${describeContainer(c)}` });
    }
  }
  return refs;
}
