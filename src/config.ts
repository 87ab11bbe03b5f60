// Operator configuration: flags override environment variables override
// defaults. One table (OPTIONS) drives the parser and --help; docs/configuration.md
// lists the same flags.
import { parseArgs } from 'node:util';
import { hostname } from 'node:os';
import { parseDuration } from './api/duration.ts';
import { quantityValue } from './api/quantity.ts';
import { DEFAULT_OPERATOR_NAMESPACE, OPERATOR_LEASE, WEBHOOK_CONFIGURATION_NAME, WEBHOOK_SERVICE_NAME } from './api/names.ts';
import { OUTBOUND_PORT, type ProxySidecarConfig, type ResourceRequirements } from './webhook/sidecar.ts';
import { MIN_LIMIT_BYTES } from './memory-limit.ts';

export interface Config {
  kubeconfig?: string;
  namespace: string;
  httpHost: string;
  httpPort: number;
  concurrency: number;
  /** API requests per second, and how many may go at once: one token bucket for the process. */
  qps: number;
  burst: number;
  minDurationMs: number;
  caDurationMs: number;
  intermediateDurationMs: number;
  propagationDelayMs: number;
  reissueWindowMs: number;
  rotationGraceMs: number;
  rotationPollMs: number;
  resyncMs: number;
  externalCAPollMs: number;
  logLevel: string;
  logFormat: 'json' | 'pretty';
  leaderElect: boolean;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** This replica's name in the Lease (the pod name in a cluster). */
  identity: string;
  /** Address the admission webhook listens on. */
  webhookHost: string;
  /** Serve the admission webhook on this port (the chart sets 9443); undefined: no webhook. */
  webhookPort?: number;
  webhookService: string;
  /** Name of the Mutating- and ValidatingWebhookConfiguration whose caBundle the leader keeps current. */
  webhookConfiguration: string;
  bundleEndpointHost: string;
  /** Serve the SPIFFE bundle endpoint on this port (every replica); undefined: not served. */
  bundleEndpointPort?: number;
  /** Bounds on how often a partner's bundle is fetched (its refresh hint is clamped to them). */
  federationRefreshMinMs: number;
  federationRefreshMaxMs: number;
  /** The identity proxy the webhook injects for identities with spec.proxy; undefined (no --proxy-image): such pods are refused. */
  proxy?: ProxySidecarConfig;
  /** --memory-limit in bytes; undefined: the cgroup's limit (memory-limit.ts). */
  memoryLimitBytes?: number;
}

/** One flag: its AGENT_IDENTITY_<env> variable, default and meaning. The parser and --help both read this table. */
interface Option {
  env: string;
  default: string;
  help: string;
  boolean?: true;
  /** Also read the unprefixed variable (the chart sets POD_NAMESPACE from the downward API). */
  plainEnv?: true;
}

export const OPTIONS = {
  kubeconfig: { env: 'KUBECONFIG', default: '', help: 'kubeconfig file; unset: $KUBECONFIG, then ~/.kube/config, then in-cluster' },
  namespace: { env: 'POD_NAMESPACE', plainEnv: true, default: DEFAULT_OPERATOR_NAMESPACE, help: 'where self-signed CA Secrets, the Lease and the webhook Secrets live' },
  'http-host': { env: 'HTTP_HOST', default: '0.0.0.0', help: 'address for /healthz, /readyz and /metrics' },
  'http-port': { env: 'HTTP_PORT', default: '8080', help: 'port for /healthz, /readyz and /metrics (0: any free port)' },
  concurrency: { env: 'CONCURRENCY', default: '4', help: 'reconciles in flight per controller' },
  // 200, not kube-scheduler's 50 (issue 20): an issuance is 2 paced requests, so 50 capped the operator at 25
  // new identities/s once the burst was spent (a 10,000 wave took 6+ minutes, a steady 50/s queued up without
  // end). 200 still stops a runaway loop; API Priority and Fairness guards the API server itself, which is why
  // controller-runtime and cert-manager now send unpaced.
  qps: { env: 'QPS', default: '200', help: 'API requests per second, one budget for the whole process (client-go QPS; watches not counted): 100 issuances/s sustained' },
  // A wave of ~1,000 new identities (2 paced requests each: the Secret with its policy.json, the status) at full speed,
  // then --qps. What the API server sees at once stays bounded by --concurrency, since each
  // reconcile sends one request at a time.
  burst: { env: 'BURST', default: '2000', help: 'API requests the operator may send ahead of --qps after a quiet spell (client-go burst): about 1,000 new identities at full speed' },
  'min-duration': { env: 'MIN_DURATION', default: '10m', help: 'shortest leaf lifetime accepted' },
  'ca-duration': { env: 'CA_DURATION', default: '87600h', help: 'lifetime of a generated self-signed CA' },
  'intermediate-duration': { env: 'INTERMEDIATE_DURATION', default: '2160h', help: 'lifetime of the intermediate that signs leaves (renewed 2/3 through)' },
  'rotation-propagation-delay': { env: 'ROTATION_PROPAGATION_DELAY', default: '2m', help: 'after every bundle copy carries a new root, wait this long (plus the refreshHint of a published bundle endpoint) before it signs' },
  'rotation-reissue-window': { env: 'ROTATION_REISSUE_WINDOW', default: '1h', help: 'spread leaf re-issuance over this window after a root switch' },
  'rotation-grace': { env: 'ROTATION_GRACE', default: '1h', help: 'keep the old root this long after the last leaf left it' },
  'rotation-poll': { env: 'ROTATION_POLL', default: '10s', help: 'how often a running rotation re-checks the cluster' },
  resync: { env: 'RESYNC', default: '10m', help: 're-deliver every cached object (safety net for missed events)' },
  'external-ca-poll': { env: 'EXTERNAL_CA_POLL', default: '1m', help: 'how often a secretRef CA is re-read' },
  'log-level': { env: 'LOG_LEVEL', default: 'info', help: 'pino level' },
  'log-format': { env: 'LOG_FORMAT', default: 'json', help: 'json or pretty' },
  'leader-elect': { env: 'LEADER_ELECT', default: 'false', boolean: true, help: `campaign for the Lease ${OPERATOR_LEASE}; only the holder reconciles` },
  'leader-election-lease-duration': { env: 'LEADER_ELECTION_LEASE_DURATION', default: '15s', help: 'how long a Lease holds without renewal' },
  'leader-election-renew-deadline': { env: 'LEADER_ELECTION_RENEW_DEADLINE', default: '10s', help: 'the leader gives up if it cannot renew within this' },
  'leader-election-retry-period': { env: 'LEADER_ELECTION_RETRY_PERIOD', default: '2s', help: 'how often candidates retry' },
  'webhook-host': { env: 'WEBHOOK_HOST', default: '0.0.0.0', help: 'address the admission webhook listens on' },
  'webhook-port': { env: 'WEBHOOK_PORT', default: '', help: 'serve the admission webhook on this port (the chart sets 9443); unset: no webhook' },
  'webhook-service': { env: 'WEBHOOK_SERVICE', default: WEBHOOK_SERVICE_NAME, help: 'the Service named in the webhook serving certificate' },
  'webhook-configuration': { env: 'WEBHOOK_CONFIGURATION', default: WEBHOOK_CONFIGURATION_NAME, help: 'the webhook configurations whose caBundle the leader writes' },
  'bundle-endpoint-host': { env: 'BUNDLE_ENDPOINT_HOST', default: '0.0.0.0', help: 'address the SPIFFE bundle endpoint listens on' },
  'bundle-endpoint-port': { env: 'BUNDLE_ENDPOINT_PORT', default: '', help: 'serve the bundles of TrustDomains with spec.federation.bundleEndpoint on this port, every replica (the chart sets 8443); unset: not served' },
  'federation-refresh-min': { env: 'FEDERATION_REFRESH_MIN', default: '30s', help: 'a partner\'s bundle is fetched no more often than this, whatever its refresh hint; also the retry delay after a failed fetch' },
  'federation-refresh-max': { env: 'FEDERATION_REFRESH_MAX', default: '1h', help: 'a partner\'s bundle is fetched at least this often, whatever its refresh hint' },
  'proxy-image': { env: 'PROXY_IMAGE', default: '', help: 'image of the identity proxy sidecar the webhook injects for identities with spec.proxy (the operator\'s own image: the chart sets it); unset: their pods are refused' },
  'proxy-image-pull-policy': { env: 'PROXY_IMAGE_PULL_POLICY', default: 'IfNotPresent', help: 'imagePullPolicy of the proxy sidecar: IfNotPresent, Always or Never' },
  // Node's baseline is about 40 MB; issue 18's target is 80 MB under load.
  // Off by default: a fixed port on every agent pod would collide with an app listening on it, and the
  // operator's NetworkPolicy admits only the proxy's mTLS port (the admin admits their Prometheus).
  'proxy-metrics-port': { env: 'PROXY_METRICS_PORT', default: '', help: 'the injected proxy serves Prometheus /metrics on this port of the pod IP (container port proxy-metrics); the operator\'s NetworkPolicy does not admit it: add one for your Prometheus; unset: no metrics port' },
  'proxy-resources': { env: 'PROXY_RESOURCES', default: '{"requests":{"cpu":"50m","memory":"64Mi"},"limits":{"memory":"128Mi"}}', help: 'resources of the proxy sidecar, as JSON {"requests":{...},"limits":{...}} with quantities as strings (100m, 64Mi)' },
  // Read from the cgroup when unset (memory-limit.ts): the flag is for a limit the cgroup does not show, e.g. a process outside a container.
  'memory-limit': { env: 'MEMORY_LIMIT', default: '', help: `memory the operator may use, as a quantity (512Mi, 1Gi; at least ${MIN_LIMIT_BYTES / 2 ** 20}Mi); V8's heap is sized to it at start-up; unset: the cgroup's limit (v2 memory.max, v1 memory.limit_in_bytes), or V8's default when there is none` },
} as const satisfies Record<string, Option>;

type Name = keyof typeof OPTIONS;

/** The environment variable that sets a flag, as messages name it. */
export const envName = (k: Name): string => `AGENT_IDENTITY_${OPTIONS[k].env}`;

/** `--help`: every flag with its variable and default, from the table the parser uses. */
export function usage(): string {
  const lines = ['usage: agent-identity-operator [flags]', '', 'Flags override environment variables, which override defaults.', ''];
  for (const [k, o] of Object.entries(OPTIONS) as Array<[Name, Option]>) {
    const env = o.plainEnv ? `${envName(k)} or ${o.env}` : envName(k);
    lines.push(`  --${k}${o.boolean ? '' : '=VALUE'}`, `      ${o.help}`, `      env ${env}; default ${o.default === '' ? 'unset' : o.default}`);
  }
  lines.push('  --help, -h', '      print this and exit');
  return lines.join('\n') + '\n';
}

export const wantsHelp = (argv: string[]): boolean => argv.some((a) => a === '--help' || a === '-h');

function parseFlags(argv: string[]): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: Object.fromEntries(Object.entries(OPTIONS).map(([k, o]) => [k, { type: 'boolean' in o ? 'boolean' as const : 'string' as const }])),
    }).values;
  } catch (err) {
    const e = err as { code?: string; message: string };
    const flag = /'(-[^' ]+)/.exec(e.message)?.[1];
    // node's own text suggests "place it after --", which this command never wants.
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new Error(`Unknown option ${flag}; run with --help for the list of flags`);
    throw err;
  }
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const flags = parseFlags(argv);
  const get = (k: Name): string => {
    const o: Option = OPTIONS[k];
    const flag = flags[k];
    return flag !== undefined ? String(flag) : env[envName(k)] ?? (o.plainEnv ? env[o.env] : undefined) ?? o.default;
  };
  const int = (k: Name, min: number): number => {
    const n = Number(get(k));
    if (!Number.isInteger(n) || n < min) throw new Error(`--${k} must be an integer >= ${min}, got "${get(k)}"`);
    return n;
  };
  const dur = (k: Name): number => {
    try { return parseDuration(get(k)); } catch { throw new Error(`--${k} must be a duration such as 90s, 10m or 24h, got "${get(k)}"`); }
  };
  const bool = (k: Name): boolean => {
    const v = get(k);
    if (v !== 'true' && v !== 'false') throw new Error(`${envName(k)} must be true or false, got "${v}"`);
    return v === 'true';
  };
  const logFormat = get('log-format');
  if (logFormat !== 'json' && logFormat !== 'pretty') throw new Error(`--log-format must be json or pretty, got "${logFormat}"`);
  return {
    kubeconfig: get('kubeconfig') || undefined,
    namespace: get('namespace'),
    httpHost: get('http-host'),
    httpPort: int('http-port', 0),
    concurrency: int('concurrency', 1),
    qps: int('qps', 1),
    burst: int('burst', 1),
    minDurationMs: dur('min-duration'),
    caDurationMs: dur('ca-duration'),
    intermediateDurationMs: dur('intermediate-duration'),
    propagationDelayMs: dur('rotation-propagation-delay'),
    reissueWindowMs: dur('rotation-reissue-window'),
    rotationGraceMs: dur('rotation-grace'),
    rotationPollMs: dur('rotation-poll'),
    resyncMs: dur('resync'),
    externalCAPollMs: dur('external-ca-poll'),
    logLevel: get('log-level'),
    logFormat,
    leaderElect: bool('leader-elect'),
    leaseDurationMs: dur('leader-election-lease-duration'),
    renewDeadlineMs: dur('leader-election-renew-deadline'),
    retryPeriodMs: dur('leader-election-retry-period'),
    identity: env.POD_NAME || `${hostname()}-${process.pid}`,
    webhookHost: get('webhook-host'),
    webhookPort: get('webhook-port') === '' ? undefined : int('webhook-port', 0),
    webhookService: get('webhook-service'),
    webhookConfiguration: get('webhook-configuration'),
    ...federationConfig(get, int, dur),
    ...proxyConfig(get),
    ...memoryLimit(get('memory-limit')),
  };
}

/** The bundle endpoint's port and the fetch bounds, refused by name when they contradict each other or another port. */
function federationConfig(get: (k: Name) => string, int: (k: Name, min: number) => number, dur: (k: Name) => number) {
  const bundleEndpointPort = get('bundle-endpoint-port') === '' ? undefined : int('bundle-endpoint-port', 1);
  if (bundleEndpointPort !== undefined && bundleEndpointPort > 65535) throw new Error(`--bundle-endpoint-port must be a port number (1-65535), got "${bundleEndpointPort}"`);
  for (const other of ['webhook-port', 'http-port'] as const) {
    if (bundleEndpointPort !== undefined && get(other) === String(bundleEndpointPort)) throw new Error(`--bundle-endpoint-port must differ from --${other} (both ${bundleEndpointPort}): partners reach it on a port of its own`);
  }
  const federationRefreshMinMs = dur('federation-refresh-min');
  const federationRefreshMaxMs = dur('federation-refresh-max');
  if (federationRefreshMinMs < 1000) throw new Error(`--federation-refresh-min must be at least 1s, got "${get('federation-refresh-min')}"`);
  if (federationRefreshMaxMs < federationRefreshMinMs) throw new Error(`--federation-refresh-max (${get('federation-refresh-max')}) must not be shorter than --federation-refresh-min (${get('federation-refresh-min')})`);
  return { bundleEndpointHost: get('bundle-endpoint-host'), ...(bundleEndpointPort !== undefined ? { bundleEndpointPort } : {}), federationRefreshMinMs, federationRefreshMaxMs };
}

/** --memory-limit: whole bytes as a quantity, at least MIN_LIMIT_BYTES; a typo is refused, not read as "no limit". */
export function memoryLimit(text: string): { memoryLimitBytes?: number } {
  if (text === '') return {};
  const bytes = quantityValue(text);
  if (bytes === undefined || !Number.isInteger(bytes)) throw new Error(`--memory-limit must be a quantity of bytes such as 512Mi or 1Gi, got "${text}"`);
  if (bytes < MIN_LIMIT_BYTES) throw new Error(`--memory-limit must be at least ${MIN_LIMIT_BYTES / 2 ** 20}Mi (Node alone needs about 100Mi), got "${text}"`);
  return { memoryLimitBytes: bytes };
}

const PULL_POLICIES = ['IfNotPresent', 'Always', 'Never'] as const;

/** The proxy sidecar's settings, checked now: a typo must not surface as a refused pod later. */
function proxyConfig(get: (k: Name) => string): { proxy?: ProxySidecarConfig } {
  const pullPolicy = get('proxy-image-pull-policy');
  if (!(PULL_POLICIES as readonly string[]).includes(pullPolicy)) throw new Error(`--proxy-image-pull-policy must be IfNotPresent, Always or Never, got "${pullPolicy}"`);
  const resources = parseResources(get('proxy-resources'));
  const image = get('proxy-image');
  const metricsPort = get('proxy-metrics-port');
  const metrics = metricsPort === '' ? {} : { metricsPort: proxyMetricsPort(metricsPort) };
  return image ? { proxy: { image, imagePullPolicy: pullPolicy as ProxySidecarConfig['imagePullPolicy'], resources, ...metrics } } : {};
}

/** A fixed port in every proxied pod: 1-65535 and not the proxy's own outbound port. */
function proxyMetricsPort(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new Error(`--proxy-metrics-port must be a port number (1-65535), got "${value}"`);
  if (n === OUTBOUND_PORT) throw new Error(`--proxy-metrics-port must not be ${OUTBOUND_PORT}, the proxy's outbound port`);
  return n;
}

/** --proxy-resources: only requests and limits of plain quantities; anything else is refused by name. */
export function parseResources(text: string): ResourceRequirements {
  const bad = (why: string) => new Error(`--proxy-resources ${why}; expected JSON such as {"requests":{"cpu":"50m","memory":"64Mi"},"limits":{"memory":"128Mi"}}`);
  let value: unknown;
  try { value = JSON.parse(text); } catch { throw bad('is not JSON'); }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad('is not a JSON object');
  const out: ResourceRequirements = {};
  for (const [field, list] of Object.entries(value)) {
    if (field !== 'requests' && field !== 'limits') throw bad(`has the field "${field}", which is not supported (only requests and limits)`);
    if (!list || typeof list !== 'object' || Array.isArray(list)) throw bad(`${field} is not an object`);
    for (const [resource, quantity] of Object.entries(list)) {
      if (typeof quantity !== 'string' || quantityValue(quantity) === undefined) throw bad(`${field}.${resource} is not a quantity such as "100m" or "64Mi" (give it as a string)`);
    }
    out[field] = list as Record<string, string>;
  }
  return out;
}
