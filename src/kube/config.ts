// Which cluster to talk to and as whom: the kubeconfig file (or files in
// $KUBECONFIG), ~/.kube/config, or the pod's service account. Our own parser
// (kubectl's rules, as client-node's config.js applies them) so the operator
// never loads client-node's generated API at runtime (issue 12: it costs
// ~32 MB of heap). A KubeConfig is anything with the two getters below, so
// client-node's KubeConfig class fits as well (the tests hand one in).
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { isIPv6 } from 'node:net';
import { load } from 'js-yaml';

/** A kubeconfig cluster, in client-node's field names (config_types.d.ts); *Data fields are base64. */
export interface Cluster {
  readonly server: string;
  readonly caData?: string;
  readonly caFile?: string;
  readonly skipTLSVerify?: boolean;
  readonly tlsServerName?: string;
}

/** A kubeconfig user, in client-node's field names; exec, authProvider, basic auth and impersonation are handed to client-node (transport.ts). */
export interface User {
  readonly certData?: string;
  readonly certFile?: string;
  readonly keyData?: string;
  readonly keyFile?: string;
  readonly token?: string;
  /** Re-read as it rotates (a projected service account token); client-node reads a kubeconfig's once. */
  readonly tokenFile?: string;
  readonly authProvider?: unknown;
  readonly exec?: unknown;
  readonly username?: string;
  readonly impersonateUser?: string;
}

export interface KubeConfig {
  getCurrentCluster(): Cluster | null;
  getCurrentUser(): User | null;
}

/** Neither a kubeconfig nor a pod's service account: there is no cluster to talk to. */
export class NoClusterError extends Error {
  constructor() {
    super('no kubeconfig found: set KUBECONFIG or --kubeconfig, or run in a cluster');
    this.name = 'NoClusterError';
  }
}

/** A loaded kubeconfig; `files` lets client-node load the same ones for an exec or auth-provider user. */
export class LoadedKubeConfig implements KubeConfig {
  readonly cluster: Cluster | null;
  readonly user: User | null;
  readonly files: readonly string[];
  constructor(cluster: Cluster | null, user: User | null, files: readonly string[] = []) {
    this.cluster = cluster;
    this.user = user;
    this.files = files;
  }
  getCurrentCluster(): Cluster | null { return this.cluster; }
  getCurrentUser(): User | null { return this.user; }
}

type Named<T> = { name?: string } & Record<string, T | undefined>;
interface Document {
  clusters?: Named<Record<string, unknown>>[] | null;
  users?: Named<Record<string, unknown>>[] | null;
  contexts?: Named<Record<string, unknown>>[] | null;
  'current-context'?: string;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * Parses kubeconfig YAML texts, merged by kubectl's rules (the first file
 * that sets current-context wins, and so does the first entry of each name),
 * to the current context's cluster and user. Relative file paths are relative
 * to the file that names them (client-node's makePathsAbsolute).
 */
export function parseKubeConfig(files: readonly { text: string; dir: string }[]): { cluster: Cluster | null; user: User | null } {
  const clusters = new Map<string, Cluster>();
  const users = new Map<string, User>();
  const contexts = new Map<string, { cluster?: string; user?: string }>();
  let current: string | undefined;
  for (const { text, dir } of files) {
    const doc = ((text.trim() ? load(text) : undefined) ?? {}) as Document;
    const path = (p: unknown) => { const s = str(p); return s && !isAbsolute(s) ? join(dir, s) : s; };
    current ??= str(doc['current-context']);
    for (const c of doc.clusters ?? []) {
      const v = c.cluster;
      if (!c.name || !v || clusters.has(c.name)) continue;
      clusters.set(c.name, {
        server: str(v.server) ?? '', caData: str(v['certificate-authority-data']), caFile: path(v['certificate-authority']),
        skipTLSVerify: v['insecure-skip-tls-verify'] === true, tlsServerName: str(v['tls-server-name']),
      });
    }
    for (const u of doc.users ?? []) {
      const v = u.user ?? {};
      if (!u.name || users.has(u.name)) continue;
      users.set(u.name, {
        certData: str(v['client-certificate-data']), certFile: path(v['client-certificate']),
        keyData: str(v['client-key-data']), keyFile: path(v['client-key']),
        token: str(v.token), tokenFile: path(v.tokenFile),
        authProvider: v['auth-provider'] ?? undefined, exec: v.exec ?? undefined,
        username: str(v.username), impersonateUser: str(v.as),
      });
    }
    for (const c of doc.contexts ?? []) {
      const v = c.context;
      if (c.name && v && !contexts.has(c.name)) contexts.set(c.name, { cluster: str(v.cluster), user: str(v.user) });
    }
  }
  const ctx = current === undefined ? undefined : contexts.get(current);
  return { cluster: clusters.get(ctx?.cluster ?? '') ?? null, user: users.get(ctx?.user ?? '') ?? null };
}

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The pod's service account (client-node's loadFromCluster), its token re-read as the kubelet rotates it. */
export function inClusterConfig(env: NodeJS.ProcessEnv = process.env, root = SERVICE_ACCOUNT): LoadedKubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST!;
  const port = env.KUBERNETES_SERVICE_PORT;
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const server = `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  return new LoadedKubeConfig({ server, caFile: join(root, 'ca.crt') }, { tokenFile: join(root, 'token') });
}

/**
 * The cluster to talk to: the given kubeconfig file, else $KUBECONFIG or
 * ~/.kube/config, else in-cluster. client-node alone would fall back to
 * http://localhost:8080 (or https://undefined:undefined) and fail later with
 * an error that names neither.
 */
export function loadKubeConfig(path: string | undefined): LoadedKubeConfig {
  const home = join(homedir(), '.kube', 'config');
  const files = path ? [path]
    : process.env.KUBECONFIG ? process.env.KUBECONFIG.split(delimiter).filter((f) => f && existsSync(f))
    : existsSync(home) ? [home] : [];
  if (files.length === 0 && !path) {
    if (process.env.KUBERNETES_SERVICE_HOST) return inClusterConfig();
    throw new NoClusterError();
  }
  const { cluster, user } = parseKubeConfig(files.map((f) => ({ text: readFileSync(f, 'utf8'), dir: dirname(f) })));
  return new LoadedKubeConfig(cluster, user, files);
}
