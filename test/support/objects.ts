// Builders and accessors for the test objects, through the real API.
import { CustomObjectsApi, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION, AGENT_IDENTITY, TRUST_DOMAIN } from '../../src/api/group.ts';
import type { AgentIdentity, AgentIdentitySpec, Secret, TrustDomain, TrustDomainSpec } from '../../src/api/types.ts';
import type { PolicyDocument } from '../../src/api/documents.ts';

export function api(kc: KubeConfig) {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const ai = { group: GROUP, version: VERSION, plural: AGENT_IDENTITY.plural };
  const td = { group: GROUP, version: VERSION, plural: TRUST_DOMAIN.plural };
  return {
    core, custom,
    createTrustDomain: (name: string, spec: TrustDomainSpec) =>
      custom.createClusterCustomObject({ ...td, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'TrustDomain', metadata: { name }, spec } }) as Promise<TrustDomain>,
    getTrustDomain: (name: string) => custom.getClusterCustomObject({ ...td, name }) as Promise<TrustDomain>,
    /** With its ServiceAccount (created unless it exists): the operator issues no identity whose ServiceAccount is missing. */
    createIdentity: async (namespace: string, name: string, spec: Partial<AgentIdentitySpec> = {}) => {
      const serviceAccountName = spec.serviceAccountName ?? name;
      await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: serviceAccountName } } }).catch((e: { code?: number }) => { if (e.code !== 409) throw e; });
      return custom.createNamespacedCustomObject({ ...ai, namespace, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'AgentIdentity', metadata: { name }, spec: { serviceAccountName, ...spec } } }) as Promise<AgentIdentity>;
    },
    getIdentity: (namespace: string, name: string) => custom.getNamespacedCustomObject({ ...ai, namespace, name }) as Promise<AgentIdentity>,
    patchIdentity: (namespace: string, name: string, patch: object) =>
      custom.patchNamespacedCustomObject({ ...ai, namespace, name, body: patch }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)) as Promise<AgentIdentity>,
    deleteIdentity: (namespace: string, name: string) => custom.deleteNamespacedCustomObject({ ...ai, namespace, name }),
    listIdentities: (namespace: string) => custom.listNamespacedCustomObject({ ...ai, namespace }) as Promise<{ items: AgentIdentity[] }>,
    getSecret: (namespace: string, name: string) => core.readNamespacedSecret({ namespace, name }) as Promise<Secret>,
    /** An identity's policy.json as its pods read it (Secret delivery: from its Secret, `<name>-identity` unless spec.secretName); undefined before it is written. */
    getPolicy: async (namespace: string, name: string, secretName = `${name}-identity`): Promise<PolicyDocument | undefined> => {
      const json = (await core.readNamespacedSecret({ namespace, name: secretName }).catch(() => undefined))?.data?.['policy.json'];
      return json ? JSON.parse(Buffer.from(json, 'base64').toString('utf8')) as PolicyDocument : undefined;
    },
    /** The Events recorded for a TrustDomain (cluster-scoped, so they live in "default"). */
    trustDomainEvents: async (name: string) =>
      (await core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.kind=TrustDomain,involvedObject.name=${name}` })).items,
  };
}

/** The reasons of the Events a root rotation records, one per phase it enters or leaves. */
export const ROTATION_EVENTS = ['StartRotation', 'SwitchSigner', 'RetireRoot', 'FinishRotation'];

export function isReady(o: { status?: { conditions?: Array<{ type: string; status: string }> } } | undefined): boolean {
  return o?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export function secretText(s: Secret, key: string): string {
  return Buffer.from(s.data?.[key] ?? '', 'base64').toString('utf8');
}
