// The admission webhook: a server on every replica. Its certificates are
// kept by the leader's webhook-certificates controller (src/webhook-certificates/).
//
//   const server = await startWebhookServer({ kubeConfig, namespace, logger });   // every replica
export { startWebhookServer, type ReviewRecord, type ServingCertificateInfo, type WebhookName, type WebhookServer, type WebhookServerOptions } from './server.ts';
export { injectIdentity, type InjectOptions, type Injection, type InjectionSummary, type JSONPatchOp } from './mutate.ts';
export { PROXY_CONTAINER, OUTBOUND_PORT, proxyArgs, type ProxySidecarConfig, type ResourceRequirements } from './sidecar.ts';
export { validatePod, RULES, type DenyReason, type PodAdmission, type Verdict } from './validate.ts';
export {
  ANNOTATION_INJECT_CONTAINERS, ANNOTATION_INJECTED, IDENTITY_VOLUME, LABEL_AGENT, policyConfigMapName,
  WEBHOOK_CA_SECRET, WEBHOOK_CONFIGURATION_NAME, WEBHOOK_SERVICE_NAME, WEBHOOK_TLS_SECRET,
} from './names.ts';
