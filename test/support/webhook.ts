// The admission webhook against a real API server: the shipped webhook
// configurations re-pointed at a server on 127.0.0.1 (the API server itself
// calls it), pods created through the API, and what the API server answered.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AdmissionregistrationV1Api, ApiException, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { loadAll } from 'js-yaml';
import { GROUP, VERSION, AGENT_IDENTITY } from '../../src/api/group.ts';
import type { Pod } from '../../src/webhook/pod.ts';
import { createLogger } from '../../src/log.ts';
import { startWebhookServer, type ProxySidecarConfig, type ReviewRecord, type WebhookServer } from '../../src/webhook/index.ts';
import { startWebhookCertificates, type WebhookCertificates } from '../../src/webhook-certificates/controller.ts';
import { ensureNamespace, eventually, OPERATOR_NAMESPACE } from './operator.ts';
import { freePort } from './ports.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
export const WEBHOOKS_YAML = join(ROOT, 'config', 'webhook', 'webhooks.yaml');

interface WebhookDoc {
  kind: 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration';
  metadata: { name: string };
  webhooks: { name: string; clientConfig: { service?: { path?: string }; url?: string; caBundle?: string } }[];
}

/** config/webhook/webhooks.yaml as shipped, except that each webhook calls https://127.0.0.1:<port><path> instead of the Service. */
export function webhookConfigurationsFor(port: number): WebhookDoc[] {
  const docs = loadAll(readFileSync(WEBHOOKS_YAML, 'utf8')) as WebhookDoc[];
  for (const doc of docs) {
    for (const w of doc.webhooks) {
      const path = w.clientConfig.service?.path ?? '/';
      w.clientConfig = { url: `https://127.0.0.1:${port}${path}` };
    }
  }
  return docs;
}

export async function installWebhookConfigurations(kc: KubeConfig, port: number): Promise<WebhookDoc[]> {
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const docs = webhookConfigurationsFor(port);
  for (const doc of docs) {
    if (doc.kind === 'MutatingWebhookConfiguration') await admission.createMutatingWebhookConfiguration({ body: doc as never });
    else await admission.createValidatingWebhookConfiguration({ body: doc as never });
  }
  return docs;
}

/** The caBundle (decoded PEM) of every webhook in both configurations. */
export async function caBundles(kc: KubeConfig, name = 'agent-identity-operator'): Promise<string[]> {
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const m = await admission.readMutatingWebhookConfiguration({ name });
  const v = await admission.readValidatingWebhookConfiguration({ name });
  return [...(m.webhooks ?? []), ...(v.webhooks ?? [])].map((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8'));
}

export type Admitted = { admitted: true; pod: Pod } | { admitted: false; code: number; message: string };

/** Creates a pod; returns the pod the API server stored, or what it answered when it refused. */
export async function createPod(kc: KubeConfig, namespace: string, pod: Pod): Promise<Admitted> {
  const core = kc.makeApiClient(CoreV1Api);
  try {
    const created = await core.createNamespacedPod({ namespace, body: pod as V1Pod });
    return { admitted: true, pod: plain(created) };
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const body = typeof err.body === 'string' ? JSON.parse(err.body) as { message?: string } : err.body as { message?: string };
    return { admitted: false, code: err.code, message: body?.message ?? '' };
  }
}

export async function readPod(kc: KubeConfig, namespace: string, name: string): Promise<Pod> {
  return plain(await kc.makeApiClient(CoreV1Api).readNamespacedPod({ namespace, name }));
}

/** client-node returns model class instances; tests compare plain JSON, as the API server sent it. */
export function plain(pod: V1Pod): Pod {
  return JSON.parse(JSON.stringify(pod)) as Pod;
}

export async function createServiceAccounts(kc: KubeConfig, namespace: string, names: string[]): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of names) await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
}

/** Sets status.spiffeID as the operator would once the identity is issued (there is no operator in these tests). */
export async function markIssued(kc: KubeConfig, namespace: string, name: string, spiffeID: string): Promise<void> {
  await kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObjectStatus(
    { group: GROUP, version: VERSION, plural: AGENT_IDENTITY.plural, namespace, name, body: { status: { spiffeID, secretName: `${name}-identity` } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

export function podManifest(name: string, opts: { agent?: string; serviceAccountName?: string; annotations?: Record<string, string>; spec?: Partial<Pod['spec']> } = {}): Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name,
      ...(opts.agent !== undefined ? { labels: { 'agentidentity.dev/agent': opts.agent } } : {}),
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
    },
    spec: {
      ...(opts.serviceAccountName ? { serviceAccountName: opts.serviceAccountName } : {}),
      containers: [{ name: 'app', image: 'registry.invalid/agent:1' }],
      ...opts.spec,
    },
  };
}

/** A KubeConfig that authenticates as a ServiceAccount (a short-lived token), to run the webhook with only the RBAC it ships. */
export async function kubeconfigForServiceAccount(admin: KubeConfig, namespace: string, name: string): Promise<KubeConfig> {
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }).catch((e: { code?: number }) => { if (e.code !== 409) throw e; });
  const tr = await core.createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  const cluster = admin.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster], users: [{ name, token: tr.status!.token }],
    contexts: [{ name, cluster: cluster.name, user: name }], currentContext: name,
  });
  return kc;
}

export const WEBHOOK_RBAC_YAML = join(ROOT, 'config', 'webhook', 'rbac.yaml');

export interface ShippedWebhook {
  server: WebhookServer;
  manager: WebhookCertificates;
  stop(): Promise<void>;
}

/**
 * The webhook as the operator runs it, under exactly the RBAC it ships
 * (config/webhook/rbac.yaml): its server on 127.0.0.1, the leader's
 * certificate manager, and the shipped configurations pointed at the server
 * (or what `install` writes instead). The API server still has to pick the
 * configurations up from its own watch: callers wait for a first real call.
 */
export async function startShippedWebhook(
  env: { kc: KubeConfig; kubectl(args: string[]): Promise<{ code: number; stderr: string }> },
  opts: { install?: (kc: KubeConfig, port: number) => Promise<unknown>; onReview?: (r: ReviewRecord) => void; proxy?: ProxySidecarConfig } = {},
): Promise<ShippedWebhook> {
  await ensureNamespace(env.kc, OPERATOR_NAMESPACE);
  const applied = await env.kubectl(['apply', '-f', WEBHOOK_RBAC_YAML]);
  if (applied.code !== 0) throw new Error(`applying ${WEBHOOK_RBAC_YAML} failed: ${applied.stderr}`);
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent', 'json', process.stderr);
  const kc = await kubeconfigForServiceAccount(env.kc, OPERATOR_NAMESPACE, 'agent-identity-operator');
  // The server listens only once the caBundle verifies its certificate, so the configurations name its port first.
  const port = await freePort();
  const server = await startWebhookServer({ kubeConfig: kc, namespace: OPERATOR_NAMESPACE, host: '127.0.0.1', port, certificatePollMs: 200, logger: log, onReview: opts.onReview, ...(opts.proxy ? { proxy: opts.proxy } : {}) });
  await (opts.install ?? installWebhookConfigurations)(env.kc, port);
  const manager = await startWebhookCertificates({ kubeConfig: env.kc, namespace: OPERATOR_NAMESPACE, ipAddresses: ['127.0.0.1'], resyncMs: 1000, logger: log });
  await eventually(async () => server.ready(), { what: 'serving certificate loaded' });
  return {
    server, manager,
    async stop() {
      await manager.stop();
      await server.close();
    },
  };
}

/**
 * Waits until the API server calls the webhook successfully: it picks up the configurations (and their
 * caBundle) from its own watch, and until then the call fails. `answered` makes one admission and says
 * whether the webhook decided it; by default a pod of an agent that has no AgentIdentity, which the
 * webhook refuses by name.
 */
export async function untilWebhookAnswers(kc: KubeConfig, namespace: string, answered?: () => Promise<boolean>): Promise<void> {
  const refusesUnknownAgent = async () => {
    const r = await createPod(kc, namespace, podManifest(`warmup-${Date.now()}`, { agent: 'nobody' }));
    return !r.admitted && r.message.includes('has no AgentIdentity "nobody"');
  };
  await eventually(answered ?? refusesUnknownAgent, { what: 'the API server calls the webhook successfully', timeoutMs: 30_000, intervalMs: 250 });
}
