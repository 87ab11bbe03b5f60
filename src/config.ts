// Operator configuration: flags override environment variables override
// defaults. Every option is listed in README.md.
import { parseArgs } from 'node:util';
import { hostname } from 'node:os';
import { parseDuration } from './api/duration.ts';

export interface Config {
  kubeconfig?: string;
  namespace: string;
  httpHost: string;
  httpPort: number;
  concurrency: number;
  qps: number;
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
  /** Serve the admission webhook on this port (the chart sets 9443); undefined: no webhook. */
  webhookPort?: number;
  webhookService: string;
  /** Name of the Mutating- and ValidatingWebhookConfiguration whose caBundle the leader keeps current. */
  webhookConfiguration: string;
}

const OPTIONS = {
  kubeconfig: { env: 'KUBECONFIG', default: '' },
  namespace: { env: 'POD_NAMESPACE', default: 'agent-identity-system' },
  'http-host': { env: 'HTTP_HOST', default: '0.0.0.0' },
  'http-port': { env: 'HTTP_PORT', default: '8080' },
  concurrency: { env: 'CONCURRENCY', default: '4' },
  qps: { env: 'QPS', default: '20' },
  'min-duration': { env: 'MIN_DURATION', default: '10m' },
  'ca-duration': { env: 'CA_DURATION', default: '87600h' },
  'intermediate-duration': { env: 'INTERMEDIATE_DURATION', default: '2160h' },
  'rotation-propagation-delay': { env: 'ROTATION_PROPAGATION_DELAY', default: '2m' },
  'rotation-reissue-window': { env: 'ROTATION_REISSUE_WINDOW', default: '1h' },
  'rotation-grace': { env: 'ROTATION_GRACE', default: '1h' },
  'rotation-poll': { env: 'ROTATION_POLL', default: '10s' },
  resync: { env: 'RESYNC', default: '10m' },
  'external-ca-poll': { env: 'EXTERNAL_CA_POLL', default: '1m' },
  'log-level': { env: 'LOG_LEVEL', default: 'info' },
  'log-format': { env: 'LOG_FORMAT', default: 'json' },
  'leader-election-lease-duration': { env: 'LEADER_ELECTION_LEASE_DURATION', default: '15s' },
  'leader-election-renew-deadline': { env: 'LEADER_ELECTION_RENEW_DEADLINE', default: '10s' },
  'leader-election-retry-period': { env: 'LEADER_ELECTION_RETRY_PERIOD', default: '2s' },
  'webhook-port': { env: 'WEBHOOK_PORT', default: '' },
  'webhook-service': { env: 'WEBHOOK_SERVICE', default: 'agent-identity-operator-webhook' },
  'webhook-configuration': { env: 'WEBHOOK_CONFIGURATION', default: 'agent-identity-operator' },
} as const;

type Name = keyof typeof OPTIONS;

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const { values } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: {
      ...Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: 'string' as const }])),
      'leader-elect': { type: 'boolean' as const },
    },
  });
  const flags = values as Record<string, string | boolean | undefined>;
  const get = (k: Name): string => (flags[k] as string | undefined) ?? env[`AGENT_IDENTITY_${OPTIONS[k].env}`] ?? (k === 'kubeconfig' || k === 'namespace' ? env[OPTIONS[k].env] : undefined) ?? OPTIONS[k].default;
  const int = (k: Name, min: number): number => {
    const n = Number(get(k));
    if (!Number.isInteger(n) || n < min) throw new Error(`--${k} must be an integer >= ${min}, got "${get(k)}"`);
    return n;
  };
  const dur = (k: Name): number => {
    try { return parseDuration(get(k)); } catch { throw new Error(`--${k} must be a duration such as 90s, 10m or 24h, got "${get(k)}"`); }
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
    leaderElect: (flags['leader-elect'] as boolean | undefined) ?? env.AGENT_IDENTITY_LEADER_ELECT === 'true',
    leaseDurationMs: dur('leader-election-lease-duration'),
    renewDeadlineMs: dur('leader-election-renew-deadline'),
    retryPeriodMs: dur('leader-election-retry-period'),
    identity: env.POD_NAME || `${hostname()}-${process.pid}`,
    webhookPort: get('webhook-port') === '' ? undefined : int('webhook-port', 0),
    webhookService: get('webhook-service'),
    webhookConfiguration: get('webhook-configuration'),
  };
}
