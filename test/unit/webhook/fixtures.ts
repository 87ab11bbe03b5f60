// Pods and AgentIdentities for the webhook's unit tests, and an RFC 6902
// applier for the operations the webhook emits, so tests look at the pod the
// API server would store rather than at patch text.
import type { AgentIdentity, ObjectMeta } from '../../../src/api/types.ts';
import type { JSONPatchOp } from '../../../src/webhook/jsonpatch.ts';
import type { Pod } from '../../../src/webhook/pod.ts';

export function identity(name: string, serviceAccountName = name, extra: { secretName?: string; spiffeID?: string; statusSecretName?: string } = {}): AgentIdentity {
  const spiffeID = 'spiffeID' in extra ? extra.spiffeID : `spiffe://cluster.local/ns/agents/agent/${name}`;
  return {
    apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity',
    metadata: { name, namespace: 'agents', uid: `uid-${name}` },
    spec: { serviceAccountName, ...(extra.secretName ? { secretName: extra.secretName } : {}) },
    status: { ...(spiffeID ? { spiffeID } : {}), ...(extra.statusSecretName ? { secretName: extra.statusSecretName } : {}) },
  };
}

/** The metadata of an identity Secret as the operator writes it: its label, and the identity as controller owner. */
export function ownedSecret(owner: { name: string; uid: string }, labelled = true): ObjectMeta {
  return {
    name: `${owner.name}-identity`, namespace: 'agents',
    ...(labelled ? { labels: { 'app.kubernetes.io/managed-by': 'agent-identity-operator' } } : {}),
    ownerReferences: [{ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true }],
  };
}

export function pod(opts: { labels?: Record<string, string>; annotations?: Record<string, string>; serviceAccountName?: string; spec?: Partial<Pod['spec']> } = {}): Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'agent', namespace: 'agents', ...(opts.labels ? { labels: opts.labels } : {}), ...(opts.annotations ? { annotations: opts.annotations } : {}) },
    spec: {
      ...(opts.serviceAccountName ? { serviceAccountName: opts.serviceAccountName } : {}),
      containers: [{ name: 'app', image: 'agent:1' }],
      ...opts.spec,
    },
  };
}

export const agentPod = (identityName: string, more: Parameters<typeof pod>[0] = {}) =>
  pod({ ...more, labels: { 'agentidentity.dev/agent': identityName, ...more.labels }, serviceAccountName: more.serviceAccountName ?? identityName });

function unescape(segment: string): string {
  return segment.replaceAll('~1', '/').replaceAll('~0', '~');
}

/** Applies add/replace operations to a deep copy, failing on a path that does not resolve (as the API server would). */
export function applyPatch<T>(doc: T, patch: JSONPatchOp[]): T {
  const out = structuredClone(doc) as unknown;
  for (const op of patch) {
    const segments = op.path.split('/').slice(1).map(unescape);
    const last = segments.pop()!;
    let parent = out as Record<string, unknown> | unknown[];
    for (const s of segments) {
      const next = Array.isArray(parent) ? parent[Number(s)] : parent[s];
      if (next === undefined || next === null || typeof next !== 'object') throw new Error(`path ${op.path} does not resolve at ${s}`);
      parent = next as Record<string, unknown> | unknown[];
    }
    const value = structuredClone(op.value);
    if (Array.isArray(parent)) {
      if (last === '-') { if (op.op !== 'add') throw new Error(`${op.op} with -`); parent.push(value); continue; }
      const i = Number(last);
      if (!Number.isInteger(i) || i < 0 || i > parent.length || (op.op === 'replace' && i === parent.length)) throw new Error(`bad index in ${op.path}`);
      if (op.op === 'add') parent.splice(i, 0, value);
      else parent[i] = value;
    } else {
      if (op.op === 'replace' && !(last in parent)) throw new Error(`replace of missing ${op.path}`);
      parent[last] = value;
    }
  }
  return out as T;
}
