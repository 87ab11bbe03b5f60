// Who a request is sent as, and what it trusts: the headers (a bearer token
// from the kubeconfig, a token file or an exec plugin; basic auth; the
// Impersonate-* headers) and the TLS material (the cluster's CA, server name
// and verification, and a client certificate from the kubeconfig or a plugin).
// Both come from one resolved context (config.ts), so a request can never mix
// two contexts.
import { readFileSync } from 'node:fs';
import type { Cluster, User } from './config.ts';
import { runExecPlugin, type ExecCredential } from './exec.ts';

/** Files (CA, client certificate) are re-read this often, so a rotated one takes effect. */
const FILE_MAX_AGE_MS = 5 * 60_000;
/** client-go's cachingTokenSource re-reads a token file once a minute (and after a 401). */
const TOKEN_FILE_MAX_AGE_MS = 60_000;

export interface Tls { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean; servername?: string }

export type Headers = Record<string, string | string[]>;

export interface Credentials {
  /**
   * What one request carries: its Authorization and Impersonate-* headers, and
   * the TLS settings of its connection (the same object until they change: a
   * file re-read, a plugin's new certificate), both from one plugin answer.
   */
  current(): Promise<{ headers: Headers; tls: Tls }>;
  /** The API server answered 401: a cached token or plugin credential is not to be trusted any more. */
  unauthorized(): void;
  /**
   * A header repeats (two impersonated groups, or two values of one extra):
   * undici's HTTP/2 client folds repeated request headers into one "a, b",
   * which the API server reads as one group, so such a context speaks HTTP/1.1.
   */
  readonly http1: boolean;
}

/** A value read at most once per `maxAgeMs`; a read that throws is not cached. */
function cached<T>(maxAgeMs: number, read: () => T): { get(): T; clear(): void } {
  let c: { value: T; at: number } | undefined;
  return {
    get() {
      const now = performance.now();
      if (!c || now - c.at > maxAgeMs) c = { value: read(), at: now };
      return c.value;
    },
    clear() { c = undefined; },
  };
}

/** A file, else base64 data (config.ts refuses both at once, as kubectl does). */
const fileOrData = (file?: string, data?: string) => (file ? readFileSync(file) : data ? Buffer.from(data, 'base64') : undefined);

/** An exec plugin's answer, kept until it expires or the API server refuses it; one run at a time. */
function execSource(user: User, cluster: Cluster | null): { get(): Promise<ExecCredential>; clear(): void } {
  let value: ExecCredential | undefined;
  let running: Promise<ExecCredential> | undefined;
  return {
    async get() {
      if (value && (value.expiresAt === undefined || Date.now() < value.expiresAt)) return value;
      running ??= runExecPlugin(user.exec!, cluster).then((v) => (value = v)).finally(() => { running = undefined; });
      return running;
    },
    clear() { value = undefined; },
  };
}

/** The header key of one as-user-extra entry: bytes not allowed in a header name are %-escaped (client-go's headerKeyEscape). */
const extraHeader = (key: string) => `impersonate-extra-${[...Buffer.from(key)].map((b) => {
  const c = String.fromCharCode(b);
  return /[A-Za-z0-9!#$&'*+\-.^_`|~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
}).join('')}`;

/** as, as-uid, as-groups and as-user-extra, for every kind of credential. */
export function impersonationHeaders(user: User | null): Headers {
  const h: Headers = {};
  if (!user?.impersonateUser) return h;
  h['impersonate-user'] = user.impersonateUser;
  if (user.impersonateUid) h['impersonate-uid'] = user.impersonateUid;
  // One header per group: the API server reads each value as one group, "a, b" would be a single one.
  if (user.impersonateGroups?.length) h['impersonate-group'] = [...user.impersonateGroups];
  for (const [k, vs] of Object.entries(user.impersonateExtra ?? {})) h[extraHeader(k)] = [...vs];
  return h;
}

/** The credentials of one context's user against its cluster. */
export function credentialsOf(cluster: Cluster | null, user: User | null): Credentials {
  const files = cached(FILE_MAX_AGE_MS, (): Tls => ({
    ca: fileOrData(cluster?.caFile, cluster?.caData),
    ...(cluster?.skipTLSVerify ? { rejectUnauthorized: false } : {}),
    ...(cluster?.tlsServerName ? { servername: cluster.tlsServerName } : {}),
    cert: fileOrData(user?.certFile, user?.certData),
    key: fileOrData(user?.keyFile, user?.keyData),
  }));
  const tokenFile = user?.tokenFile;
  // client-go: the file wins while it can be read; a token set beside it is the fallback.
  const fileToken = tokenFile ? cached(TOKEN_FILE_MAX_AGE_MS, () => {
    try { return readFileSync(tokenFile, 'utf8').trim(); } catch (err) { if (user?.token) return user.token; throw err; }
  }) : undefined;
  const exec = user?.exec ? execSource(user, cluster) : undefined;
  const basic = user?.username ? `Basic ${Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64')}` : undefined;
  const impersonation = impersonationHeaders(user);
  // The last TLS object handed out, so an unchanged one is the same object (transport.ts keeps its pool
  // then): a plugin's new token alone leaves the connections as they are, its new certificate does not.
  let tls: { from: Tls; cert?: string; value: Tls } | undefined;

  return {
    async current() {
      const fromExec = exec ? await exec.get() : undefined;
      const from = files.get();
      const cert = fromExec?.cert ? `${fromExec.cert.toString()}${fromExec.key?.toString()}` : undefined;
      if (tls?.from !== from || tls.cert !== cert) {
        tls = { from, cert, value: fromExec?.cert ? { ...from, cert: fromExec.cert, key: fromExec.key } : from };
      }
      const token = fromExec ? fromExec.token : fileToken ? fileToken.get() : user?.token;
      const authorization = token ? `Bearer ${token}` : basic;
      return { headers: authorization ? { authorization, ...impersonation } : { ...impersonation }, tls: tls.value };
    },
    unauthorized() {
      fileToken?.clear();
      exec?.clear();
    },
    http1: Object.values(impersonation).some((v) => Array.isArray(v) && v.length > 1),
  };
}
