// The webhook's API access: AgentIdentity, TrustDomain, Namespace, and
// Secret- and ConfigMap-metadata lookups for admission, its two Secrets, and the caBundle of
// its two webhook configurations. Thin wrappers
// over client-node in the style of src/kube/client.ts (every rejection is a
// KubeError), each request bounded by a timeout so an admission answer never
// waits on a slow API server longer than the API server waits on us.
import {
  AdmissionregistrationV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions,
  type ConfigurationOptions, type KubeConfig, type V1Secret,
} from '@kubernetes/client-node';
import { AGENT_IDENTITY, FIELD_MANAGER, GROUP, TRUST_DOMAIN, VERSION } from '../api/group.ts';
import type { AgentIdentity, ObjectMeta, Secret, TrustDomain } from '../api/types.ts';
import { call, ifExists } from '../kube/errors.ts';
import type { JSONPatchOp } from './jsonpatch.ts';

export type WebhookConfigurationKind = 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration';

/** The part of a webhook configuration the manager reads. */
export interface WebhookConfiguration {
  metadata: { name?: string; resourceVersion?: string };
  webhooks?: { name: string; clientConfig: { caBundle?: string; url?: string; service?: unknown } }[];
}

/** The parts of client-node's RequestContext and undici's Dispatcher the middleware touches. */
interface Dispatcher { close(): Promise<void> }
interface RequestContext {
  setSignal(signal: AbortSignal): void;
  getDispatcher(): Dispatcher | undefined;
  setDispatcher(dispatcher: Dispatcher): void;
}

/**
 * One connection pool for every request. client-node builds a new undici
 * Agent, with its own connections and TLS sessions, for each request; under
 * admission traffic that held hundreds of MB that never came back. The first
 * request's Agent serves all later ones (theirs are dropped unused), and is
 * replaced every few minutes, so a rotated cluster CA or client certificate
 * in the kubeconfig still takes effect.
 */
class SharedDispatcher {
  private current?: { dispatcher: Dispatcher; since: number };
  private readonly maxAgeMs: number;

  constructor(maxAgeMs: number) {
    this.maxAgeMs = maxAgeMs;
  }

  adopt(ctx: RequestContext): void {
    const fresh = ctx.getDispatcher();
    if (!fresh) return;
    const now = performance.now();
    if (!this.current || now - this.current.since > this.maxAgeMs) {
      // Closed a while later, not now: a request handed the old one a moment ago may not have
      // dispatched yet. close() then lets what is in flight finish and drops the connections.
      const old = this.current?.dispatcher;
      if (old) setTimeout(() => void old.close().catch(() => undefined), 30_000).unref();
      this.current = { dispatcher: fresh, since: now };
    }
    ctx.setDispatcher(this.current.dispatcher);
  }
}

/** Aborts the HTTP request after `ms`: the call then fails as a network error (code 0), never as a 404. */
function requestOptions(ms: number, pool: SharedDispatcher): ConfigurationOptions {
  // Object-param APIs run observable middleware after authentication (which
  // sets the dispatcher), and only `toPromise()` of what a hook returns is
  // used: a resolved promise behind it is enough.
  const observable = <T>(value: T) => ({ toPromise: () => Promise.resolve(value) });
  const middleware = {
    pre: (ctx: RequestContext) => { ctx.setSignal(AbortSignal.timeout(ms)); pool.adopt(ctx); return observable(ctx); },
    post: <T>(res: T) => observable(res),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' } as unknown as ConfigurationOptions;
}

export class WebhookKube {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly admission: AdmissionregistrationV1Api;
  private readonly opts: ConfigurationOptions;

  constructor(kc: KubeConfig, timeoutMs: number) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.admission = kc.makeApiClient(AdmissionregistrationV1Api);
    // Built once: the middleware creates each request's timeout signal when it runs.
    this.opts = requestOptions(timeoutMs, new SharedDispatcher(5 * 60_000));
  }

  // --- admission lookups: live reads, so a just-created AgentIdentity counts at once

  /** Undefined only when the API server answered 404. */
  getIdentity(namespace: string, name: string): Promise<AgentIdentity | undefined> {
    return ifExists(() => this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: AGENT_IDENTITY.plural, namespace, name }, this.opts) as Promise<AgentIdentity>);
  }

  async listIdentities(namespace: string): Promise<AgentIdentity[]> {
    const list = await call(() => this.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: AGENT_IDENTITY.plural, namespace }, this.opts) as Promise<{ items: AgentIdentity[] }>);
    return list.items;
  }

  /** Undefined only when the API server answered 404. */
  getTrustDomain(name: string): Promise<TrustDomain | undefined> {
    return ifExists(() => this.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: TRUST_DOMAIN.plural, name }, this.opts) as Promise<TrustDomain>);
  }

  async getNamespaceLabels(name: string): Promise<Record<string, string> | undefined> {
    const ns = await ifExists(() => this.core.readNamespace({ name }, this.opts));
    return ns && (ns.metadata?.labels ?? {});
  }

  /**
   * A Secret's or ConfigMap's metadata only (PartialObjectMetadata): admission
   * asks who owns it, so it never needs, and so never receives, its data.
   * Undefined only when the API server answered 404.
   */
  async getMetadata(kind: 'Secret' | 'ConfigMap', namespace: string, name: string): Promise<ObjectMeta | undefined> {
    const opts = setHeaderOptions('Accept', 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1', this.opts);
    const read = kind === 'Secret' ? () => this.core.readNamespacedSecret({ namespace, name }, opts) : () => this.core.readNamespacedConfigMap({ namespace, name }, opts);
    const object = await ifExists(read as () => Promise<{ metadata: ObjectMeta }>);
    return object?.metadata;
  }

  // --- the webhook's Secrets

  getSecret(namespace: string, name: string): Promise<Secret> {
    return call(() => this.core.readNamespacedSecret({ namespace, name }, this.opts) as Promise<Secret>);
  }

  createSecret(secret: Secret): Promise<Secret> {
    return call(() => this.core.createNamespacedSecret({ namespace: secret.metadata.namespace!, body: secret as V1Secret, fieldManager: FIELD_MANAGER }, this.opts) as Promise<Secret>);
  }

  /** metadata.resourceVersion must be set: a write based on a stale read fails with 409. */
  replaceSecret(secret: Secret): Promise<Secret> {
    const { namespace, name } = secret.metadata as { namespace: string; name: string };
    return call(() => this.core.replaceNamespacedSecret({ namespace, name, body: secret as V1Secret, fieldManager: FIELD_MANAGER }, this.opts) as Promise<Secret>);
  }

  // --- caBundle of the webhook configurations (they come from the chart; never created here)

  /** Undefined when the configuration is not installed (404). */
  getWebhookConfiguration(kind: WebhookConfigurationKind, name: string): Promise<WebhookConfiguration | undefined> {
    return ifExists(() => (kind === 'MutatingWebhookConfiguration'
      ? this.admission.readMutatingWebhookConfiguration({ name }, this.opts)
      : this.admission.readValidatingWebhookConfiguration({ name }, this.opts)) as Promise<WebhookConfiguration>);
  }

  patchWebhookConfiguration(kind: WebhookConfigurationKind, name: string, ops: (JSONPatchOp | TestOp)[]): Promise<unknown> {
    const opts = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch, this.opts);
    const body = ops as object[];
    return call(() => (kind === 'MutatingWebhookConfiguration'
      ? this.admission.patchMutatingWebhookConfiguration({ name, body, fieldManager: FIELD_MANAGER }, opts)
      : this.admission.patchValidatingWebhookConfiguration({ name, body, fieldManager: FIELD_MANAGER }, opts)));
  }
}

/** A JSON Patch `test`: guards an index-based write against a reordered list. */
export interface TestOp { op: 'test'; path: string; value: unknown }
