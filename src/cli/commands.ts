// The agent-identity commands. Each takes a Kube client and parsed options,
// and returns what to print; I/O stays in main.ts.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION, AGENT_IDENTITY, TRUST_DOMAIN, ANNOTATION_RENEW_REQUESTED_AT, ANNOTATION_ROTATE_REQUESTED_AT } from '../api/group.ts';
import { getCondition } from '../api/conditions.ts';
import type { AgentIdentity, TrustDomain } from '../api/types.ts';
import { call } from '../kube/errors.ts';
import { table, relative } from './table.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const ai = { group: GROUP, version: VERSION, plural: AGENT_IDENTITY.plural };
const td = { group: GROUP, version: VERSION, plural: TRUST_DOMAIN.plural };

export interface Output { text: string; json: unknown }

export class Commands {
  private readonly custom: CustomObjectsApi;
  private readonly now: () => Date;

  constructor(kc: KubeConfig, now: () => Date = () => new Date()) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.now = now;
  }

  private async identities(namespace: string | undefined, selector?: string): Promise<AgentIdentity[]> {
    const list = namespace
      ? await call(() => this.custom.listNamespacedCustomObject({ ...ai, namespace, labelSelector: selector }))
      : await call(() => this.custom.listClusterCustomObject({ ...ai, labelSelector: selector }));
    return (list as { items: AgentIdentity[] }).items;
  }

  async status(namespace: string | undefined): Promise<Output> {
    const items = await this.identities(namespace);
    const now = this.now();
    const rows = items.map((i) => {
      const ready = getCondition(i.status?.conditions, 'Ready');
      return [i.metadata.namespace!, i.metadata.name!, ready?.status ?? 'Unknown', ready?.reason ?? '-', i.status?.spiffeID ?? '-', relative(i.status?.notAfter, now), relative(i.status?.renewalTime, now)];
    });
    return {
      text: table(['NAMESPACE', 'NAME', 'READY', 'REASON', 'SPIFFE ID', 'EXPIRES', 'RENEWS'], rows),
      json: items.map((i) => ({ namespace: i.metadata.namespace, name: i.metadata.name, ready: getCondition(i.status?.conditions, 'Ready')?.status ?? 'Unknown', ...i.status })),
    };
  }

  /** Asks the operator to renew: it re-issues every identity whose annotation value it has not answered yet. */
  async renew(target: { name?: string; namespace?: string; all?: boolean; selector?: string }): Promise<Output> {
    let names: Array<{ namespace: string; name: string }>;
    if (target.name) {
      if (!target.namespace) throw new Error('renew NAME needs -n NAMESPACE');
      names = [{ namespace: target.namespace, name: target.name }];
    } else if (target.all || target.selector) {
      names = (await this.identities(target.namespace, target.selector)).map((i) => ({ namespace: i.metadata.namespace!, name: i.metadata.name! }));
    } else {
      throw new Error('renew needs NAME -n NAMESPACE, --all, or -l SELECTOR');
    }
    const stamp = this.now().toISOString();
    for (const n of names) {
      await call(() => this.custom.patchNamespacedCustomObject({ ...ai, ...n, body: { metadata: { annotations: { [ANNOTATION_RENEW_REQUESTED_AT]: stamp } } } }, mergePatch));
    }
    return {
      text: names.map((n) => `renewal requested for ${n.namespace}/${n.name}`).join('\n') + (names.length ? '\n' : 'no identities matched\n'),
      json: { requestedAt: stamp, identities: names },
    };
  }

  async caStatus(name: string | undefined): Promise<Output> {
    const items = name
      ? [await call(() => this.custom.getClusterCustomObject({ ...td, name })) as TrustDomain]
      : ((await call(() => this.custom.listClusterCustomObject(td))) as { items: TrustDomain[] }).items;
    const now = this.now();
    const lines: string[] = [];
    for (const t of items) {
      const ready = getCondition(t.status?.conditions, 'Ready');
      const r = t.status?.rotation;
      lines.push(`${t.metadata.name} (${t.spec.trustDomain}): Ready=${ready?.status ?? 'Unknown'} ${ready?.reason ?? ''}`.trimEnd());
      lines.push(`  intermediate ${t.status?.intermediate?.fingerprint ?? '-'} expires ${relative(t.status?.intermediate?.notAfter, now)}`);
      lines.push(r ? `  rotation: ${r.phase} (${r.reason}); bundle copies ${r.bundleCopiesUpdated}/${r.bundleCopies}; leaves remaining ${r.leavesRemaining}/${r.leaves}` : '  rotation: none');
      lines.push(`  bundle published in ${t.status?.bundleNamespaces ?? 0} namespaces; deny list ${t.status?.denyListEntries ?? 0} entries`);
      lines.push(table(['ROOT', 'STATE', 'SUBJECT', 'EXPIRES'], (t.status?.roots ?? []).map((x) => [x.fingerprint, x.state, x.subject, relative(x.notAfter, now)])).replace(/^/gm, '  ').trimEnd());
    }
    return { text: lines.join('\n') + '\n', json: items.map((t) => ({ name: t.metadata.name, trustDomain: t.spec.trustDomain, ...t.status })) };
  }

  async caRotate(name: string): Promise<Output> {
    const stamp = this.now().toISOString();
    await call(() => this.custom.patchClusterCustomObject({ ...td, name, body: { metadata: { annotations: { [ANNOTATION_ROTATE_REQUESTED_AT]: stamp } } } }, mergePatch));
    return { text: `root rotation requested for TrustDomain ${name}; follow it with: agent-identity ca status ${name}\n`, json: { trustDomain: name, requestedAt: stamp } };
  }
}
