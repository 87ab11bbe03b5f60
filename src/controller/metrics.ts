// Prometheus metrics. Names follow Prometheus conventions with the
// agentidentity_ prefix; per-object labels appear only on the per-identity
// expiry/readiness gauges, as cert-manager does.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Seconds: one issuance takes milliseconds; seconds means the API server or the CA is slow. */
const ISSUANCE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class Metrics {
  readonly registry = new Registry();

  readonly certificateExpiration = new Gauge({
    name: 'agentidentity_certificate_expiration_timestamp_seconds',
    help: 'Unix time at which the identity\'s current leaf certificate expires.',
    labelNames: ['namespace', 'name'], registers: [this.registry],
  });
  readonly certificateRenewal = new Gauge({
    name: 'agentidentity_certificate_renewal_timestamp_seconds',
    help: 'Unix time at which the identity\'s current leaf certificate is due for renewal.',
    labelNames: ['namespace', 'name'], registers: [this.registry],
  });
  readonly certificateReady = new Gauge({
    name: 'agentidentity_certificate_ready_status',
    help: 'Ready condition of an identity: 1 for the current condition status, 0 for the others.',
    labelNames: ['namespace', 'name', 'condition'], registers: [this.registry],
  });
  readonly issuances = new Counter({
    name: 'agentidentity_issuance_total',
    help: 'Leaf certificate issuance attempts, by trust domain, trigger reason and result.',
    labelNames: ['trust_domain', 'reason', 'result'], registers: [this.registry],
  });
  readonly issuanceDuration = new Histogram({
    name: 'agentidentity_issuance_duration_seconds',
    help: 'Time to generate a key, sign a leaf and write its Secret.',
    labelNames: ['trust_domain'], buckets: ISSUANCE_BUCKETS, registers: [this.registry],
  });
  readonly podCertificates = new Counter({
    name: 'agentidentity_pod_certificates_total',
    help: 'PodCertificateRequests answered by the signer, by trust domain, result (issued, denied, failed) and reason.',
    labelNames: ['trust_domain', 'result', 'reason'], registers: [this.registry],
  });
  readonly podCertificateIssuanceDuration = new Histogram({
    name: 'agentidentity_pod_certificate_issuance_duration_seconds',
    help: 'Time to sign a pod certificate and write it into its PodCertificateRequest.',
    labelNames: ['trust_domain'], buckets: ISSUANCE_BUCKETS, registers: [this.registry],
  });
  readonly reconciles = new Counter({
    name: 'agentidentity_reconcile_total',
    help: 'Reconciles run, by controller and how they ended (success, requeue, wait, error); counted by the work queue.',
    labelNames: ['controller', 'result'], registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'agentidentity_reconcile_errors_total',
    help: 'Reconciles that failed and were retried with backoff, by controller and reason.',
    labelNames: ['controller', 'reason'], registers: [this.registry],
  });
  readonly transientErrors = new Counter({
    name: 'agentidentity_transient_errors_total',
    help: 'API errors that were retried, not reported (a write conflict, 429, 5xx, a reset or timed-out connection), by controller and reason (Conflict, TooManyRequests, ServerError, Network).',
    labelNames: ['controller', 'reason'], registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'agentidentity_workqueue_depth',
    help: 'Keys waiting or in flight in a controller\'s work queue.',
    labelNames: ['controller'], registers: [this.registry],
  });
  readonly informerRestarts = new Counter({
    name: 'agentidentity_informer_restarts_total',
    help: 'Times a watch was restarted after an error, by resource.',
    labelNames: ['resource'], registers: [this.registry],
  });
  readonly apiRequestRetries = new Counter({
    name: 'agentidentity_api_request_retries_total',
    help: 'API requests sent again on a new connection after theirs failed, by reason: not_sent (the API server never saw it), connection_lost (it may have).',
    labelNames: ['reason'], registers: [this.registry],
  });
  readonly caExpiration = new Gauge({
    name: 'agentidentity_ca_expiration_timestamp_seconds',
    help: 'Unix time at which a trust domain\'s signing CA expires.',
    labelNames: ['trust_domain'], registers: [this.registry],
  });
  readonly caGenerated = new Counter({
    name: 'agentidentity_ca_generated_total',
    help: 'Self-signed CAs generated (only ever after the API server answered 404 for the CA Secret).',
    labelNames: ['trust_domain'], registers: [this.registry],
  });

  readonly appPortExposedPods = new Gauge({
    name: 'agentidentity_proxy_app_port_exposed_pods',
    help: 'Pods with the identity proxy whose agent app port answers on the pod IP, as the operator last probed them (the AgentIdentity\'s AppPortPrivate condition names them).',
    registers: [this.registry],
  });

  readonly webhookReviews = new Counter({
    name: 'agentidentity_webhook_reviews_total',
    help: 'Admission reviews answered, by webhook (mutate, validate) and result (allowed, denied).',
    labelNames: ['webhook', 'result'], registers: [this.registry],
  });

  readonly webhookCertificateExpiration = new Gauge({
    name: 'agentidentity_webhook_certificate_expiration_timestamp_seconds',
    help: 'Unix time at which the webhook\'s CA or serving certificate expires (leader only).',
    labelNames: ['certificate'], registers: [this.registry],
  });
  readonly webhookManagerErrors = new Gauge({
    name: 'agentidentity_webhook_manager_failing',
    help: '1 while the leader\'s last pass over the webhook certificates and caBundle failed, else 0.',
    registers: [this.registry],
  });

  readonly federationRefreshes = new Counter({
    name: 'agentidentity_federation_refreshes_total',
    help: 'Fetches of a partner\'s bundle, by foreign trust domain and result (Accepted, or why the bundle was refused and the last good one kept).',
    labelNames: ['trust_domain', 'result'], registers: [this.registry],
  });
  readonly federationLastRefresh = new Gauge({
    name: 'agentidentity_federation_last_refresh_timestamp_seconds',
    help: 'Unix time at which a bundle was last accepted from a partner\'s bundle endpoint, by foreign trust domain.',
    labelNames: ['trust_domain'], registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'agentidentity_' });
  }

  /** Runs before each /metrics scrape, for values read from elsewhere rather than pushed. */
  onScrape(fn: () => void): void {
    this.scrapeHooks.push(fn);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async text(): Promise<string> {
    for (const fn of this.scrapeHooks) fn();
    return this.registry.metrics();
  }

  private readonly scrapeHooks: Array<() => void> = [];

  setReady(namespace: string, name: string, status: 'True' | 'False' | 'Unknown'): void {
    for (const c of ['True', 'False', 'Unknown']) this.certificateReady.set({ namespace, name, condition: c }, c === status ? 1 : 0);
  }

  /** Drops the expiry and renewal series of an identity that holds no certificate (suspended, or its Secret is another's). */
  forgetCertificate(namespace: string, name: string): void {
    this.certificateExpiration.remove({ namespace, name });
    this.certificateRenewal.remove({ namespace, name });
  }

  /** Drops every per-identity series when the identity is gone, so /metrics does not grow forever. */
  forgetIdentity(namespace: string, name: string): void {
    this.forgetCertificate(namespace, name);
    for (const condition of ['True', 'False', 'Unknown']) this.certificateReady.remove({ namespace, name, condition });
  }
}
