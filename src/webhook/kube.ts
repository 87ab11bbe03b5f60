// Transitional, for manager.ts only (rewritten on another branch): the webhook
// talks to the API server through src/kube's KubeClient. Delete at merge.
import { KubeClient, type KubeConfig } from '../kube/client.ts';

export type { TestOp, WebhookConfiguration, WebhookConfigurationKind } from '../kube/client.ts';

export class WebhookKube extends KubeClient {
  constructor(kc: KubeConfig, timeoutMs: number) {
    super(kc, { timeoutMs });
  }
}
