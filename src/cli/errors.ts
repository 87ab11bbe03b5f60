// How the CLI reports a failure: one line on stderr that names the API server
// and the cause in a person's words, and an exit status (1: the command
// failed; 2: the command line or the kubeconfig is wrong). Errors are told
// apart by their type, never by the shape of a `code` property: a KubeError's
// code is an HTTP status (a number), a socket error's a string, a
// DOMException's a number again; guessing from it crashed on a 401.
import { STATUS_CODES } from 'node:http';
import { formatDuration } from '../api/duration.ts';
import { INVALID_JSON, KubeConfigError, KubeError, NoClusterError, TIMEOUT } from '../kube/errors.ts';

/** Wrong arguments: exit 2. */
export class UsageError extends Error {}

/** A kubeconfig that cannot be loaded or names no server: exit 2, as with no cluster configured. */
export class ConfigError extends Error {}

/** An API call failed: the server it went to, and what it answered or why it could not. */
export class ApiFailure extends Error {
  readonly kube: KubeError;
  constructor(server: string, kube: KubeError, timeoutMs: number | undefined) {
    super(`${displayServer(server)}: ${causeOf(kube, timeoutMs)}`);
    this.name = 'ApiFailure';
    this.kube = kube;
  }
}

/** node:util parseArgs rejects an unknown or malformed flag with a TypeError whose code is ERR_PARSE_ARGS_*. */
function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

/** 2 for a usage or configuration error, else 1. */
export function exitStatusOf(err: unknown): 1 | 2 {
  return err instanceof UsageError || err instanceof ConfigError || isParseArgsError(err) ? 2 : 1;
}

/**
 * Why the kubeconfig could not be loaded. A YAML error's message quotes the
 * lines around the fault, which may hold a token or a key: only its reason
 * and line are kept.
 */
export function kubeconfigError(err: unknown): ConfigError {
  // Both name the kubeconfig and the field themselves (kube/config.ts), and never quote its text.
  if (err instanceof NoClusterError || err instanceof KubeConfigError) return new ConfigError(err.message);
  const e = err as { name?: unknown; reason?: unknown; mark?: { line?: unknown }; message?: unknown };
  const why = e?.name === 'YAMLException'
    ? `invalid YAML: ${String(e.reason)}${typeof e.mark?.line === 'number' ? ` (line ${e.mark.line + 1})` : ''}`
    : typeof e?.message === 'string' ? e.message : String(err);
  return new ConfigError(`cannot load the kubeconfig: ${why}`);
}

/**
 * What goes to stderr: `agent-identity: <message>` on one line; with --debug
 * the stack follows (for an API failure, the KubeError's: where the call was made).
 */
export function report(err: unknown, debug: boolean): string {
  const message = err instanceof Error ? err.message : String(err);
  const line = `agent-identity: ${oneLine(message)}${isParseArgsError(err) ? ' (agent-identity --help for usage)' : ''}\n`;
  if (!debug) return line;
  const stack = err instanceof ApiFailure ? err.kube.stack : err instanceof Error ? err.stack : undefined;
  return line + (stack ?? '') + '\n';
}

/** A Status message or a YAML error may span lines; one line keeps the report greppable. */
const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ').trim();

/** The server as the kubeconfig names it, without user:password or a query, which may hold credentials. */
export function displayServer(server: string): string {
  try {
    const u = new URL(server);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')}`;
  } catch {
    return server;
  }
}

/** What the API server answered, or why it could not be asked, in words. */
export function causeOf(e: KubeError, timeoutMs?: number): string {
  return e.code >= 100 ? statusCause(e) : networkCause(e, timeoutMs);
}

/** Said when the Status carries no message of its own (or only repeats the status text, as a 401's "Unauthorized"). */
const STATUS_HINTS: Record<number, string> = {
  401: "the kubeconfig's credentials were refused",
  403: "the kubeconfig's user is not allowed to do this",
  404: 'the API server does not serve this (are the agent-identity CRDs installed?)',
  409: 'the object changed or already exists; try again',
  429: 'the API server is overloaded; try again',
};

function statusCause(e: KubeError): string {
  const text = STATUS_CODES[e.code] ?? 'Error';
  // statusError writes "HTTP <code>" when the body was no Status (a proxy's page, "404 page not found").
  const said = e.message !== `HTTP ${e.code}` && e.message.toLowerCase() !== text.toLowerCase() ? e.message : undefined;
  const hint = STATUS_HINTS[e.code] ?? (e.code >= 500 ? 'the API server failed to answer; try again' : undefined);
  return `${e.code} ${text}${said ?? hint ? `: ${said ?? hint}` : ''}`;
}

/** Failures before any HTTP status, by reason: socket errors (node's net and dns, undici), an answer that is not JSON. */
const NETWORK_CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused: nothing listens there (is the API server running, and is the server in the kubeconfig right?)',
  ENOTFOUND: 'host name not found (DNS)',
  EAI_AGAIN: 'host name could not be resolved now (DNS)',
  ECONNRESET: 'the connection was reset before an answer',
  EPIPE: 'the connection was closed before an answer',
  UND_ERR_SOCKET: 'the connection was closed before an answer',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'could not connect: timed out',
  UND_ERR_CONNECT_TIMEOUT: 'could not connect: timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_BODY_TIMEOUT: 'the answer stopped halfway',
  [INVALID_JSON]: "the answer was not JSON (is the server a Kubernetes API server, not a proxy's page?)",
  // Speaking TLS to a plain HTTP port.
  ERR_SSL_WRONG_VERSION_NUMBER: 'TLS failure: the server does not speak TLS there (is it an http:// address?)',
};

/** OpenSSL's verification codes (node's tls) for a certificate no CA of the kubeconfig (or the system's, when it names none) vouches for. */
const UNTRUSTED = /^(UNABLE_TO_(GET_ISSUER_CERT|GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE|DECRYPT_CERT_SIGNATURE|DECODE_ISSUER_PUBLIC_KEY)|CERT_(SIGNATURE_FAILURE|UNTRUSTED|REJECTED|CHAIN_TOO_LONG|REVOKED)|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|INVALID_CA|INVALID_PURPOSE|PATH_LENGTH_EXCEEDED)$/;

function networkCause(e: KubeError, timeoutMs: number | undefined): string {
  const r = e.reason;
  if (r === TIMEOUT) return `no answer within ${timeoutMs ? `${formatDuration(timeoutMs)} (--request-timeout)` : '--request-timeout'}`;
  if (Object.hasOwn(NETWORK_CAUSES, r)) return NETWORK_CAUSES[r]!;
  if (UNTRUSTED.test(r)) return `TLS failure: the server's certificate is not signed by a CA the kubeconfig trusts (${e.message})`;
  if (r === 'CERT_HAS_EXPIRED' || r === 'CERT_NOT_YET_VALID') return `TLS failure: the server's certificate is not valid now (${e.message})`;
  if (r === 'ERR_TLS_CERT_ALTNAME_INVALID' || r === 'HOSTNAME_MISMATCH') return `TLS failure: the server's certificate is not for this host name (${e.message})`;
  if (/^ERR_(SSL|TLS)_/.test(r) || r === 'EPROTO') return `TLS failure: ${e.message}`;
  return r === 'NetworkError' || e.message.includes(r) ? e.message : `${e.message} (${r})`;
}
