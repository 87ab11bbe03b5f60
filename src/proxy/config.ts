// The proxy's settings, from flags or AGENT_IDENTITY_PROXY_* variables (a
// flag wins), so the webhook can configure the sidecar either way. Anything
// unknown or malformed is refused by name.
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { parseDuration } from '../api/duration.ts';
import { REQUEST_POLICY_DEFAULTS } from '../sdk/index.ts';
import type { AuditLog } from '../audit/index.ts';
import { DEFAULT_LIMITS, type Limits } from './limits.ts';

export type InboundMode = 'http' | 'tcp';

export interface ProxyConfig {
  /** Where the identity files are; undefined: the SDK's default (AGENT_IDENTITY_DIR, else /var/run/agentidentity). */
  identityDir?: string;
  /** mTLS listener in front of the app; absent: no inbound proxy. */
  inbound?: { address: string; port: number; appPort: number; mode: InboundMode };
  /** Plain-HTTP forward proxy on loopback for the app's calls; absent: no outbound proxy. */
  outbound?: { address: string; port: number };
  /** Host → address pins (as curl --resolve), for hosts outside cluster DNS. */
  resolve: Map<string, string>;
  limits: Limits;
  /** Request-level policy: bodies on MCP and A2A routes are read whole to decide, up to this many bytes. */
  requests: { maxBodyBytes: number };
  /** Where the audit lines go (one per authorization decision). */
  audit: AuditLog;
  /** Prometheus /metrics (and /healthz); absent: no metrics listener. */
  metrics?: { address: string; port: number };
}

export class ProxyConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProxyConfigError';
  }
}

const OPTIONS = {
  'identity-dir': { type: 'string' },
  'inbound-port': { type: 'string' },
  'inbound-address': { type: 'string' },
  'app-port': { type: 'string' },
  mode: { type: 'string' },
  'outbound-port': { type: 'string' },
  resolve: { type: 'string', multiple: true },
  'max-header-bytes': { type: 'string' },
  'max-body-bytes': { type: 'string' },
  'max-rpc-body-bytes': { type: 'string' },
  'header-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'max-connections': { type: 'string' },
  'max-connections-per-peer': { type: 'string' },
  'audit-log': { type: 'string' },
  'metrics-port': { type: 'string' },
  'metrics-address': { type: 'string' },
} as const;

type Flag = keyof typeof OPTIONS;

/** AGENT_IDENTITY_PROXY_INBOUND_PORT for --inbound-port, and so on; --identity-dir is the SDK's AGENT_IDENTITY_DIR. */
export const envName = (flag: Flag) => (flag === 'identity-dir' ? 'AGENT_IDENTITY_DIR' : `AGENT_IDENTITY_PROXY_${flag.toUpperCase().replaceAll('-', '_')}`);

// The outbound proxy serves only the pod's own containers.
const OUTBOUND_ADDRESS = '127.0.0.1';
// Beside a pod's app: every interface, so other pods reach it.
const INBOUND_ADDRESS = '0.0.0.0';
const METRICS_ADDRESS = '0.0.0.0';

export const PROXY_USAGE = `agent-identity proxy [options]   (each also as AGENT_IDENTITY_PROXY_<OPTION>, e.g. AGENT_IDENTITY_PROXY_APP_PORT)
  --identity-dir DIR          the mounted identity (tls.crt/tls.key or credential-bundle.pem, ca.crt, policy.json); env AGENT_IDENTITY_DIR
  --inbound-port PORT         terminate mTLS here and forward admitted peers to the app
  --inbound-address ADDR      default ${INBOUND_ADDRESS}
  --app-port PORT             the app's plaintext port on 127.0.0.1 (with --inbound-port)
  --mode http|tcp             http (default): adds x-agent-identity-peer and x-forwarded-client-cert; tcp: bytes only
  --outbound-port PORT        HTTP forward proxy on 127.0.0.1 (set HTTP_PROXY=http://127.0.0.1:PORT in the app)
  --resolve HOST=ADDRESS      connect to ADDRESS for HOST (repeatable), as curl --resolve
  --max-header-bytes N        default ${DEFAULT_LIMITS.maxHeaderBytes}
  --max-body-bytes N          default ${DEFAULT_LIMITS.maxBodyBytes}
  --max-rpc-body-bytes N      a JSON-RPC body on an MCP or A2A route (read whole to decide), default ${REQUEST_POLICY_DEFAULTS.maxBodyBytes}
  --header-timeout DURATION   default ${DEFAULT_LIMITS.headerTimeoutMs / 1000}s
  --idle-timeout DURATION     default ${DEFAULT_LIMITS.idleTimeoutMs / 1000}s
  --max-connections N         per listener, default ${DEFAULT_LIMITS.maxConnections}
  --max-connections-per-peer N  outbound mTLS connections to one peer; more requests wait; default ${DEFAULT_LIMITS.maxConnectionsPerPeer}
  --audit-log -|PATH|off      one JSON line per authorization decision: - stdout (default), PATH appended to, off
  --metrics-port PORT         serve Prometheus /metrics and /healthz here (default: no metrics listener)
  --metrics-address ADDR      default ${METRICS_ADDRESS} (Prometheus scrapes the pod IP)
`;

function port(flag: Flag, value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 0 && n <= 65535)) throw new ProxyConfigError(`--${flag} must be a port number (0-65535), got "${value}"`);
  return n;
}

function positive(flag: Flag, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n > 0 && Number.isSafeInteger(n))) throw new ProxyConfigError(`--${flag} must be a positive whole number, got "${value}"`);
  return n;
}

function duration(flag: Flag, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch {
    throw new ProxyConfigError(`--${flag} must be a duration such as 10s or 1m, got "${value}"`);
  }
  if (ms <= 0) throw new ProxyConfigError(`--${flag} must be longer than 0, got "${value}"`);
  return ms;
}

/** `-` is stdout, `off` nothing, anything else a file path; an empty value is a mistake, not stdout. */
function auditLog(value: string | undefined): AuditLog {
  if (value === undefined || value === '-') return { to: 'stdout' };
  if (value === 'off') return { to: 'off' };
  if (value.trim() === '') throw new ProxyConfigError('--audit-log must be -, off or a file path, got ""');
  return { to: 'file', path: value };
}

function pins(values: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const [host, address, ...rest] = v.split('=');
    if (!host || !address || rest.length || !isIP(address)) throw new ProxyConfigError(`--resolve must be HOST=IP, got "${v}"`);
    out.set(host.toLowerCase().replace(/\.$/, ''), address);
  }
  return out;
}

/** Reads flags, then the environment for flags not given; throws ProxyConfigError naming the setting. */
export function proxyConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ProxyConfig {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false });
  } catch (err) {
    throw new ProxyConfigError((err as Error).message);
  }
  const flags = parsed.values;
  const get = (flag: Exclude<Flag, 'resolve'>): string | undefined => flags[flag] ?? (env[envName(flag)] || undefined);
  const resolveValues = flags.resolve ?? (env[envName('resolve')] ? env[envName('resolve')]!.split(',').map((s) => s.trim()) : []);

  const inboundPort = get('inbound-port');
  const appPort = get('app-port');
  const mode = get('mode') ?? 'http';
  if (mode !== 'http' && mode !== 'tcp') throw new ProxyConfigError(`--mode must be http or tcp, got "${mode}"`);
  if ((inboundPort === undefined) !== (appPort === undefined)) throw new ProxyConfigError('--inbound-port and --app-port go together: the inbound proxy forwards to the app port');
  const outboundPort = get('outbound-port');
  if (inboundPort === undefined && outboundPort === undefined) throw new ProxyConfigError('nothing to do: set --inbound-port with --app-port, --outbound-port, or both');
  const inboundAddress = get('inbound-address') ?? INBOUND_ADDRESS;
  if (!isIP(inboundAddress)) throw new ProxyConfigError(`--inbound-address must be an IP address, got "${inboundAddress}"`);
  const metricsPort = get('metrics-port');
  const metricsAddress = get('metrics-address') ?? METRICS_ADDRESS;
  if (!isIP(metricsAddress)) throw new ProxyConfigError(`--metrics-address must be an IP address, got "${metricsAddress}"`);
  if (metricsPort === undefined && get('metrics-address') !== undefined) throw new ProxyConfigError('--metrics-address needs --metrics-port');

  return {
    identityDir: get('identity-dir'),
    inbound: inboundPort === undefined ? undefined : { address: inboundAddress, port: port('inbound-port', inboundPort), appPort: port('app-port', appPort!), mode },
    outbound: outboundPort === undefined ? undefined : { address: OUTBOUND_ADDRESS, port: port('outbound-port', outboundPort) },
    resolve: pins(resolveValues),
    limits: {
      maxHeaderBytes: positive('max-header-bytes', get('max-header-bytes'), DEFAULT_LIMITS.maxHeaderBytes),
      maxBodyBytes: positive('max-body-bytes', get('max-body-bytes'), DEFAULT_LIMITS.maxBodyBytes),
      headerTimeoutMs: duration('header-timeout', get('header-timeout'), DEFAULT_LIMITS.headerTimeoutMs),
      idleTimeoutMs: duration('idle-timeout', get('idle-timeout'), DEFAULT_LIMITS.idleTimeoutMs),
      maxConnections: positive('max-connections', get('max-connections'), DEFAULT_LIMITS.maxConnections),
      maxConnectionsPerPeer: positive('max-connections-per-peer', get('max-connections-per-peer'), DEFAULT_LIMITS.maxConnectionsPerPeer),
    },
    requests: { maxBodyBytes: positive('max-rpc-body-bytes', get('max-rpc-body-bytes'), REQUEST_POLICY_DEFAULTS.maxBodyBytes) },
    audit: auditLog(get('audit-log')),
    metrics: metricsPort === undefined ? undefined : { address: metricsAddress, port: port('metrics-port', metricsPort) },
  };
}
