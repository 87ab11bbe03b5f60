// The agent-identity commands. Each reads or annotates through the KubeClient
// and returns what to print, as text and as JSON; main.ts writes it.
import { parseCertificates, describeCertificate, fingerprintOf } from '../pki/parse.ts';
import { verifyChain } from '../pki/verify.ts';
import { BUNDLE_CONFIGMAP_PREFIX, LABEL_TRUST_DOMAIN, SECRET_BUNDLE, SECRET_CERT, ANNOTATION_RENEW_REQUESTED_AT, ANNOTATION_ROTATE_REQUESTED_AT } from '../api/group.ts';
import { CRD_NAMES, OPERATOR_LEASE, WEBHOOK_CONFIGURATION_NAME, WEBHOOK_TLS_SECRET } from '../api/names.ts';
import { getCondition } from '../api/conditions.ts';
import type { KubeClient } from '../kube/client.ts';
import { ifExists, KubeError } from '../kube/errors.ts';
import { causeOf, displayServer, UsageError } from './errors.ts';
import { table, relative } from './table.ts';

export interface Output { text: string; json: unknown }

/** One line of `check`: a component deliberately not deployed is "not in use", which is not a failure. */
interface CheckResult { check: string; ok: boolean; state: 'ok' | 'not in use' | 'failed'; detail: string }
interface NotInUse { notInUse: string }

export class Commands {
  private readonly kube: KubeClient;
  private readonly now: () => Date;

  constructor(kube: KubeClient, now: () => Date = () => new Date()) {
    this.kube = kube;
    this.now = now;
  }

  /** The certificate chain in an identity Secret, and whether the trust bundle accepts it. Never reads out tls.key. */
  async inspectSecret(name: string, namespace: string): Promise<Output> {
    const secret = await this.kube.getSecret(namespace, name);
    const text = (k: string) => Buffer.from(secret.data?.[k] ?? '', 'base64').toString('utf8');
    const chain = parseCertificates(text(SECRET_CERT));
    const td = secret.metadata?.labels?.[LABEL_TRUST_DOMAIN];
    // The bundle the agents in this namespace trust: the published ConfigMap, else the Secret's own ca.crt.
    const published = td ? await this.kube.getConfigMap(namespace, `${BUNDLE_CONFIGMAP_PREFIX}${td}`).catch(() => undefined) : undefined;
    const bundlePem = published?.data?.[SECRET_BUNDLE] ?? text(SECRET_BUNDLE);
    const roots = bundlePem ? parseCertificates(bundlePem) : [];
    const trust = roots.length ? await verifyChain(chain, roots, this.now()) : { ok: false as const, reason: 'no trust bundle found' };
    const certs = [];
    for (const c of chain) {
      const i = await describeCertificate(c);
      certs.push({ subject: i.subject || '(empty)', issuer: i.issuer, serialNumber: i.serialNumber, spiffeID: i.spiffeID, dnsNames: i.dnsNames, notBefore: i.notBefore.toISOString(), notAfter: i.notAfter.toISOString(), key: `${i.keyAlgorithm}${i.keySize ? `-${i.keySize}` : ''}`, isCA: i.isCA, fingerprint: i.fingerprint });
    }
    const bundle = await Promise.all(roots.map(async (r) => ({ subject: r.subject, fingerprint: await fingerprintOf(r), notAfter: r.notAfter.toISOString() })));
    const now = this.now();
    const lines = [`Secret ${namespace}/${name} (${secret.type})`];
    certs.forEach((c, i) => {
      lines.push(`  [${i}] ${i === 0 ? 'leaf' : 'intermediate'}  ${c.spiffeID ?? c.subject}`);
      lines.push(`      subject ${c.subject}`, `      issuer  ${c.issuer}`, `      serial  ${c.serialNumber}   key ${c.key}`);
      if (c.dnsNames.length) lines.push(`      DNS     ${c.dnsNames.join(', ')}`);
      lines.push(`      valid   ${c.notBefore} → ${c.notAfter} (expires ${relative(c.notAfter, now)})`, `      sha256  ${c.fingerprint}`);
    });
    lines.push(`  bundle (${published ? `ConfigMap ${published.metadata?.name}` : 'ca.crt'}): ${bundle.map((b) => `${b.subject} ${b.fingerprint.slice(0, 23)}…`).join('; ') || 'none'}`);
    lines.push(`  trusted: ${trust.ok ? 'yes, the chain verifies against the bundle' : `NO: ${trust.reason}`}`);
    return { text: lines.join('\n') + '\n', json: { secret: `${namespace}/${name}`, chain: certs, bundle, trusted: trust.ok, ...(trust.ok ? {} : { reason: trust.reason }) } };
  }

  /**
   * Is everything in place? API server, CRDs, the leader Lease, the webhook's caBundle, TrustDomains.
   * Leader election and the webhook are optional (`make run` uses neither): absent, they are reported
   * as not in use; present but broken (an expired Lease, a caBundle that does not trust the serving
   * certificate), they fail.
   */
  async check(operatorNamespace: string): Promise<Output & { ok: boolean }> {
    const results: CheckResult[] = [];
    // Past an API server that refused or did not answer, every check would fail the same way (or wait out its timeout).
    let reached = true;
    const add = async (check: string, fn: () => Promise<string | NotInUse>) => {
      if (!reached) {
        results.push({ check, ok: false, state: 'failed', detail: 'not checked: the API server check failed' });
        return;
      }
      try {
        const r = await fn();
        results.push(typeof r === 'string' ? { check, ok: true, state: 'ok', detail: r } : { check, ok: true, state: 'not in use', detail: r.notInUse });
      } catch (err) {
        results.push({ check, ok: false, state: 'failed', detail: err instanceof KubeError ? causeOf(err) : (err as Error).message });
      }
    };
    await add('API server reachable', async () => {
      const v = await this.kube.getVersion().catch((err: unknown) => {
        throw err instanceof KubeError ? new Error(`${displayServer(this.kube.server ?? '')}: ${causeOf(err)}`) : err;
      });
      return `${displayServer(this.kube.server ?? '')} ${v.gitVersion}`;
    });
    reached = results[0]!.ok;
    await add('CRDs installed', async () => {
      for (const n of CRD_NAMES) {
        if (!await this.kube.crdEstablished(n)) throw new Error(`${n} is not Established`);
      }
      return CRD_NAMES.join(', ');
    });
    await add('leader election', async () => {
      const lease = await ifExists(() => this.kube.getLease(operatorNamespace, OPERATOR_LEASE));
      if (!lease) return { notInUse: `not in use (no Lease ${OPERATOR_LEASE} in ${operatorNamespace}; fine for a single replica started without --leader-elect)` };
      const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime) : undefined;
      const age = renewed ? this.now().getTime() - renewed.getTime() : Infinity;
      if (!lease.spec?.holderIdentity || age > (lease.spec.leaseDurationSeconds ?? 15) * 1000) throw new Error(`no replica holds the Lease ${OPERATOR_LEASE} in ${operatorNamespace} (last renewed ${relative(renewed?.toISOString(), this.now())})`);
      return `leader ${lease.spec.holderIdentity}, renewed ${relative(renewed!.toISOString(), this.now())}`;
    });
    await add('webhook', async () => {
      const name = WEBHOOK_CONFIGURATION_NAME;
      const configs = [
        await this.kube.getWebhookConfiguration('MutatingWebhookConfiguration', name),
        await this.kube.getWebhookConfiguration('ValidatingWebhookConfiguration', name),
      ];
      if (!configs.some(Boolean)) return { notInUse: `not installed (no webhook configuration ${name})` };
      const tls = await ifExists(() => this.kube.getSecret(operatorNamespace, WEBHOOK_TLS_SECRET));
      if (!tls) throw new Error(`webhook configuration ${name} is installed but Secret ${operatorNamespace}/${WEBHOOK_TLS_SECRET} does not exist: run the operator with --webhook-port`);
      const serving = parseCertificates(Buffer.from(tls.data?.[SECRET_CERT] ?? '', 'base64').toString('utf8'));
      const bundles = configs.flatMap((c) => c?.webhooks ?? []).map((w) => w.clientConfig.caBundle);
      for (const b of bundles) {
        const roots = b ? parseCertificates(Buffer.from(b, 'base64').toString('utf8')) : [];
        const v = roots.length ? await verifyChain(serving, roots, this.now()) : { ok: false as const, reason: 'caBundle is empty' };
        if (!v.ok) throw new Error(`a webhook's caBundle does not trust the serving certificate: ${v.reason}`);
      }
      return `${bundles.length} webhooks trust the serving certificate`;
    });
    await add('TrustDomains Ready', async () => {
      const tds = await this.kube.listTrustDomains();
      const bad = tds.filter((t) => getCondition(t.status?.conditions, 'Ready')?.status !== 'True');
      if (!tds.length) throw new Error('no TrustDomain exists; apply examples/trustdomain-default.yaml');
      if (bad.length) throw new Error(bad.map((t) => `${t.metadata.name}: ${getCondition(t.status?.conditions, 'Ready')?.message ?? 'not reconciled yet'}`).join('; '));
      return tds.map((t) => t.metadata.name).join(', ');
    });
    const ok = results.every((r) => r.ok);
    const mark = { ok: 'yes', 'not in use': '-', failed: 'NO' } as const;
    return { ok, text: table(['CHECK', 'OK', 'DETAIL'], results.map((r) => [r.check, mark[r.state], r.detail])), json: { ok, checks: results } };
  }

  async status(namespace: string | undefined): Promise<Output> {
    const items = await this.kube.listIdentities(namespace);
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
      if (!target.namespace) throw new UsageError('renew NAME needs -n NAMESPACE');
      names = [{ namespace: target.namespace, name: target.name }];
    } else if (target.all || target.selector) {
      names = (await this.kube.listIdentities(target.namespace, target.selector)).map((i) => ({ namespace: i.metadata.namespace!, name: i.metadata.name! }));
    } else {
      throw new UsageError('renew needs NAME -n NAMESPACE, --all, or -l SELECTOR');
    }
    const stamp = this.now().toISOString();
    for (const n of names) {
      await this.kube.annotateIdentity(n.namespace, n.name, { [ANNOTATION_RENEW_REQUESTED_AT]: stamp });
    }
    return {
      text: names.map((n) => `renewal requested for ${n.namespace}/${n.name}`).join('\n') + (names.length ? '\n' : 'no identities matched\n'),
      json: { requestedAt: stamp, identities: names },
    };
  }

  async caStatus(name: string | undefined): Promise<Output> {
    const items = name ? [await this.kube.getTrustDomain(name)] : await this.kube.listTrustDomains();
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
    await this.kube.annotateTrustDomain(name, { [ANNOTATION_ROTATE_REQUESTED_AT]: stamp });
    return { text: `root rotation requested for TrustDomain ${name}; follow it with: agent-identity ca status ${name}\n`, json: { trustDomain: name, requestedAt: stamp } };
  }
}
