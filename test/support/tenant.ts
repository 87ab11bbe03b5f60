// A namespace tenant, as the security tests' attacker: a ServiceAccount that
// holds only a namespaced Role, reached through impersonation, so every
// request it makes is authorized by the real API server's RBAC.
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type V1PolicyRule } from '@kubernetes/client-node';
import { GROUP, AGENT_IDENTITY } from '../../src/api/group.ts';

/** What a namespace user typically may do: identities, pods, ServiceAccounts and their own ConfigMaps; no Secrets, no status. */
export const TENANT_RULES: V1PolicyRule[] = [
  { apiGroups: [GROUP], resources: [AGENT_IDENTITY.plural], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['pods', 'configmaps', 'serviceaccounts'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
];

export interface Tenant {
  namespace: string;
  /** `system:serviceaccount:<namespace>:<name>` */
  user: string;
  /** A client that acts as the tenant (admin credentials plus Impersonate-User). */
  kc: KubeConfig;
}

export async function makeTenant(admin: KubeConfig, namespace: string, name = 'tenant', rules: V1PolicyRule[] = TENANT_RULES): Promise<Tenant> {
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules } });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    },
  });
  const user = `system:serviceaccount:${namespace}:${name}`;
  return { namespace, user, kc: impersonating(admin, user) };
}

/** A copy of `admin` whose requests the API server authorizes as `user` (it adds a ServiceAccount's groups itself). */
export function impersonating(admin: KubeConfig, user: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: admin.clusters,
    contexts: admin.contexts,
    currentContext: admin.currentContext,
    users: admin.users.map((u) => ({ ...u, impersonateUser: user })),
  });
  return kc;
}
