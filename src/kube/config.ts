// Which cluster to talk to and as whom: the kubeconfig file (or files in
// $KUBECONFIG), ~/.kube/config, or the pod's service account. This module is
// the one owner of that choice: it merges the files as kubectl does, resolves
// one context, and checks every field of that context's cluster and user, so
// the server, the TLS settings and the credentials of a request all come from
// here (credentials.ts and transport.ts only act on the result). A field we do
// not act on is refused by name at start-up, never ignored.
//
// A KubeConfig is anything with the two getters below, in client-node's field
// names, so the tests' client-node KubeConfig objects fit as well.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, sep } from 'node:path';
import { isIPv6 } from 'node:net';
import { load } from 'js-yaml';
import { KubeConfigError, NoClusterError } from './errors.ts';
import { proxyFor } from './proxy.ts';

export { KubeConfigError, NoClusterError };

/** A kubeconfig cluster, in client-node's field names (config_types.d.ts); *Data fields are base64. */
export interface Cluster {
  readonly server: string;
  readonly caData?: string;
  readonly caFile?: string;
  readonly skipTLSVerify?: boolean;
  readonly tlsServerName?: string;
  /** http, https or socks5; when unset, HTTPS_PROXY/HTTP_PROXY and NO_PROXY decide (proxy.ts). */
  readonly proxyUrl?: string;
  /** The `client.authentication.k8s.io/exec` extension, handed to an exec plugin that asks for cluster info. */
  readonly execExtension?: unknown;
}

/** An exec credential plugin, as the kubeconfig spells it (client.authentication.k8s.io ExecConfig). */
export interface ExecConfig {
  readonly apiVersion: string;
  readonly command: string;
  readonly args?: readonly string[];
  readonly env?: readonly { name: string; value: string }[];
  readonly interactiveMode?: 'Never' | 'IfAvailable' | 'Always';
  readonly provideClusterInfo?: boolean;
  readonly installHint?: string;
}

/** A kubeconfig user, in client-node's field names where it has them. */
export interface User {
  readonly certData?: string;
  readonly certFile?: string;
  readonly keyData?: string;
  readonly keyFile?: string;
  readonly token?: string;
  /** Re-read as it rotates (a projected service account token). */
  readonly tokenFile?: string;
  readonly username?: string;
  readonly password?: string;
  readonly exec?: ExecConfig;
  readonly impersonateUser?: string;
  readonly impersonateUid?: string;
  readonly impersonateGroups?: readonly string[];
  readonly impersonateExtra?: Readonly<Record<string, readonly string[]>>;
}

export interface KubeConfig {
  getCurrentCluster(): Cluster | null;
  getCurrentUser(): User | null;
}

/** One resolved context: its cluster and user, nothing else of the files. */
export class LoadedKubeConfig implements KubeConfig {
  readonly cluster: Cluster | null;
  readonly user: User | null;
  /** The context's name ('' in a pod), for messages. */
  readonly context: string;
  constructor(cluster: Cluster | null, user: User | null, context = '') {
    this.cluster = cluster;
    this.user = user;
    this.context = context;
  }
  getCurrentCluster(): Cluster | null { return this.cluster; }
  getCurrentUser(): User | null { return this.user; }
}

type Fields = Record<string, unknown>;
interface Entry { fields: Fields; dir: string }

/** The parts of a kubeconfig that name things: kind, apiVersion and preferences change nothing we do. */
interface Document {
  clusters?: { name?: unknown; cluster?: Fields }[] | null;
  users?: { name?: unknown; user?: Fields }[] | null;
  contexts?: { name?: unknown; context?: Fields }[] | null;
  'current-context'?: unknown;
}

/** What the files say together: each name once, and the current context. */
export interface Merged {
  clusters: Map<string, Entry>;
  users: Map<string, Entry>;
  contexts: Map<string, Entry>;
  current?: string;
}

const nonEmpty = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * Merges kubeconfig texts as kubectl merges $KUBECONFIG: the first file that
 * names a cluster, user or context owns that whole entry (no field-by-field
 * mix), and the first non-empty current-context wins. A name twice in one
 * file is an error, as in kubectl.
 */
export function mergeKubeConfigs(files: readonly { text: string; dir: string; path?: string }[]): Merged {
  const merged: Merged = { clusters: new Map(), users: new Map(), contexts: new Map() };
  for (const { text, dir, path } of files) {
    let doc: Document;
    try {
      doc = ((text.trim() ? load(text) : undefined) ?? {}) as Document;
    } catch (err) {
      // js-yaml's message quotes the lines around the error, which may hold a token: only its reason and line.
      const e = err as { reason?: unknown; mark?: { line?: unknown } };
      const line = typeof e.mark?.line === 'number' ? ` (line ${e.mark.line + 1})` : '';
      throw new KubeConfigError(`kubeconfig ${path ?? 'text'}: invalid YAML: ${String(e.reason ?? 'cannot parse')}${line}`);
    }
    merged.current ??= nonEmpty(doc['current-context']);
    const take = (into: Map<string, Entry>, list: { name?: unknown }[] | null | undefined, key: 'cluster' | 'user' | 'context') => {
      const mine = new Set<string>();
      for (const item of list ?? []) {
        const name = nonEmpty(item.name);
        if (!name) continue;
        // kubectl refuses the file too: which of the two would the user mean?
        if (mine.has(name)) throw new KubeConfigError(`kubeconfig ${path ?? 'text'}: ${key} "${name}" is defined twice`);
        mine.add(name);
        if (!into.has(name)) into.set(name, { fields: ((item as Record<string, unknown>)[key] ?? {}) as Fields, dir });
      }
    };
    take(merged.clusters, doc.clusters, 'cluster');
    take(merged.users, doc.users, 'user');
    take(merged.contexts, doc.contexts, 'context');
  }
  return merged;
}

// Every field of a cluster or user entry, with what we do with it. A field not
// listed here is refused by name: it might change how we authenticate or connect.
const CLUSTER_FIELDS = new Set([
  'server', 'certificate-authority', 'certificate-authority-data', 'insecure-skip-tls-verify', 'tls-server-name', 'proxy-url',
  // undici never asks for a compressed answer (it sends no Accept-Encoding), so both values are true as they stand.
  'disable-compression',
  // Informational for kubectl too; the exec one is handed to a plugin that asks for cluster info.
  'extensions',
]);
const USER_FIELDS = new Set([
  'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'token', 'tokenFile',
  'username', 'password', 'as', 'as-uid', 'as-groups', 'as-user-extra', 'exec', 'auth-provider',
  // Informational: client-go reads no extension of a user.
  'extensions',
]);
const EXEC_FIELDS = new Set(['apiVersion', 'command', 'args', 'env', 'interactiveMode', 'provideClusterInfo', 'installHint']);
const EXEC_VERSIONS = new Set(['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1']);
const EXEC_EXTENSION = 'client.authentication.k8s.io/exec';

/** Reads one entry's fields, refusing each it cannot use; `where` names the entry and the context. */
function reader(fields: Fields, where: string, known: Set<string>) {
  const fail = (message: string): never => { throw new KubeConfigError(`${where}: ${message}`); };
  for (const k of Object.keys(fields)) if (!known.has(k)) fail(`field "${k}" is not supported`);
  return {
    fail,
    string(k: string): string | undefined {
      const v = fields[k];
      if (v === undefined || v === null || v === '') return undefined;
      return typeof v === 'string' ? v : fail(`${k} must be a string`);
    },
    bool(k: string): boolean | undefined {
      const v = fields[k];
      if (v === undefined || v === null) return undefined;
      return typeof v === 'boolean' ? v : fail(`${k} must be true or false`);
    },
    strings(k: string): string[] | undefined {
      const v = fields[k];
      if (v === undefined || v === null) return undefined;
      return Array.isArray(v) && v.every((s) => typeof s === 'string') ? v as string[] : fail(`${k} must be a list of strings`);
    },
  };
}

/** A path in a kubeconfig is relative to the file that names it (kubectl's ResolveLocalPaths). */
const resolvePath = (dir: string, p: string | undefined) => (p && !isAbsolute(p) ? join(dir, p) : p);

function readCluster({ fields, dir }: Entry, where: string): Cluster {
  const r = reader(fields, where, CLUSTER_FIELDS);
  const server = r.string('server') ?? r.fail('server is not set');
  let url: URL;
  try { url = new URL(server); } catch { return r.fail(`server "${server}" is not a URL`); }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') r.fail(`server "${server}" must be https:// or http://`);
  const caData = r.string('certificate-authority-data');
  const caFile = resolvePath(dir, r.string('certificate-authority'));
  // kubectl refuses each pair as well ("... are both specified"): one source per secret.
  if (caData && caFile) r.fail('certificate-authority and certificate-authority-data cannot both be set');
  const skipTLSVerify = r.bool('insecure-skip-tls-verify') ?? false;
  // client-go refuses this pair too: which of the two would the user want?
  if (skipTLSVerify && (caData || caFile)) r.fail('insecure-skip-tls-verify cannot be combined with certificate-authority(-data)');
  const proxyUrl = r.string('proxy-url');
  // Checked now, so a bad proxy-url or HTTPS_PROXY fails at start-up rather than on each request.
  try { proxyFor(url, proxyUrl); } catch (err) { r.fail((err as Error).message); }
  r.bool('disable-compression');
  const extensions = fields.extensions;
  if (extensions !== undefined && extensions !== null && !Array.isArray(extensions)) r.fail('extensions must be a list');
  const exec = (extensions as { name?: unknown; extension?: unknown }[] | undefined)?.find((e) => e?.name === EXEC_EXTENSION)?.extension;
  return {
    server, caData, caFile, skipTLSVerify, tlsServerName: r.string('tls-server-name'), proxyUrl,
    ...(exec === undefined ? {} : { execExtension: exec }),
  };
}

function readExec(value: unknown, dir: string, where: string): ExecConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new KubeConfigError(`${where}: exec must be a mapping`);
  const r = reader(value as Fields, `${where} exec`, EXEC_FIELDS);
  const apiVersion = r.string('apiVersion') ?? r.fail('apiVersion is not set');
  if (!EXEC_VERSIONS.has(apiVersion)) r.fail(`apiVersion "${apiVersion}" is not supported; use client.authentication.k8s.io/v1 or v1beta1`);
  const command = r.string('command') ?? r.fail('command is not set');
  const mode = r.string('interactiveMode');
  // client-go: v1 must say; v1beta1 defaults to IfAvailable.
  if (!mode && apiVersion.endsWith('/v1')) r.fail('interactiveMode must be set for client.authentication.k8s.io/v1 (Never, IfAvailable or Always)');
  if (mode && !['Never', 'IfAvailable', 'Always'].includes(mode)) r.fail(`interactiveMode "${mode}" must be Never, IfAvailable or Always`);
  const env = (value as Fields).env;
  if (env !== undefined && env !== null && !(Array.isArray(env) && env.every((e) => typeof e?.name === 'string' && typeof (e.value ?? '') === 'string'))) {
    r.fail('env must be a list of { name, value }');
  }
  return {
    apiVersion,
    // A command with a path separator is a file next to the kubeconfig; a bare name is looked up in PATH.
    command: command.includes(sep) ? resolvePath(dir, command)! : command,
    args: r.strings('args'),
    env: (env as { name: string; value?: string }[] | undefined)?.map((e) => ({ name: e.name, value: e.value ?? '' })),
    interactiveMode: (mode ?? 'IfAvailable') as ExecConfig['interactiveMode'],
    provideClusterInfo: r.bool('provideClusterInfo') ?? false,
    installHint: r.string('installHint'),
  };
}

function readUser({ fields, dir }: Entry, where: string): User {
  const r = reader(fields, where, USER_FIELDS);
  if (fields['auth-provider'] !== undefined && fields['auth-provider'] !== null) {
    r.fail('auth-provider is not supported; use an exec plugin such as kubelogin');
  }
  const user: User = {
    certData: r.string('client-certificate-data'), certFile: resolvePath(dir, r.string('client-certificate')),
    keyData: r.string('client-key-data'), keyFile: resolvePath(dir, r.string('client-key')),
    token: r.string('token'), tokenFile: resolvePath(dir, r.string('tokenFile')),
    username: r.string('username'), password: r.string('password'),
    impersonateUser: r.string('as'), impersonateUid: r.string('as-uid'), impersonateGroups: r.strings('as-groups'),
    impersonateExtra: readExtra(fields['as-user-extra'], r.fail),
    exec: fields.exec === undefined || fields.exec === null ? undefined : readExec(fields.exec, dir, where),
  };
  if (user.certData && user.certFile) r.fail('client-certificate and client-certificate-data cannot both be set');
  if (user.keyData && user.keyFile) r.fail('client-key and client-key-data cannot both be set');
  const cert = user.certData ?? user.certFile;
  const key = user.keyData ?? user.keyFile;
  if (cert && !key) r.fail('client-certificate is set without client-key');
  if (key && !cert) r.fail('client-key is set without client-certificate');
  if (user.password && !user.username) r.fail('password is set without username');
  // client-go refuses both at once: one Authorization header.
  if (user.username && (user.token || user.tokenFile)) r.fail('username/password and token cannot both be set');
  // client-go would run no plugin then, silently: say so instead.
  const other = user.token ? 'token' : user.tokenFile ? 'tokenFile' : user.username ? 'username' : cert ? 'client-certificate' : undefined;
  if (user.exec && other) r.fail(`exec and ${other} cannot both be set (kubectl would ignore exec)`);
  // client-go: "requesting uid, groups or user-extra ... without impersonating a user".
  const extra = user.impersonateUid ? 'as-uid' : user.impersonateGroups?.length ? 'as-groups' : user.impersonateExtra ? 'as-user-extra' : undefined;
  if (extra && !user.impersonateUser) r.fail(`${extra} is set without as`);
  return Object.fromEntries(Object.entries(user).filter(([, v]) => v !== undefined)) as User;
}

function readExtra(v: unknown, fail: (m: string) => never): Record<string, string[]> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) return fail('as-user-extra must map keys to lists of strings');
  for (const vals of Object.values(v)) {
    if (!Array.isArray(vals) || !vals.every((s) => typeof s === 'string')) fail('as-user-extra must map keys to lists of strings');
  }
  return Object.keys(v).length ? v as Record<string, string[]> : undefined;
}

/**
 * The context to use (`--context`, else the current one) with its cluster and
 * user checked: everything a request needs, from one context only.
 */
export function resolveContext(merged: Merged, context?: string): LoadedKubeConfig {
  const name = context || merged.current;
  if (!name) throw new KubeConfigError('kubeconfig has no current-context; set one or pass --context');
  const ctx = merged.contexts.get(name);
  if (!ctx) throw new KubeConfigError(`kubeconfig context "${name}" does not exist`);
  const clusterName = nonEmpty(ctx.fields.cluster);
  if (!clusterName) throw new KubeConfigError(`kubeconfig context "${name}": cluster is not set`);
  const cluster = merged.clusters.get(clusterName);
  if (!cluster) throw new KubeConfigError(`kubeconfig context "${name}": cluster "${clusterName}" does not exist`);
  const userName = nonEmpty(ctx.fields.user);
  const user = userName === undefined ? undefined : merged.users.get(userName);
  // No user at all is anonymous, as in kubectl; a user that is named but missing is a mistake.
  if (userName !== undefined && !user) throw new KubeConfigError(`kubeconfig context "${name}": user "${userName}" does not exist`);
  return new LoadedKubeConfig(
    readCluster(cluster, `kubeconfig cluster "${clusterName}" (context "${name}")`),
    user ? readUser(user, `kubeconfig user "${userName}" (context "${name}")`) : null,
    name,
  );
}

/** Parses and merges kubeconfig texts, then resolves the context (the current one unless named). */
export function parseKubeConfig(files: readonly { text: string; dir: string; path?: string }[], context?: string): LoadedKubeConfig {
  return resolveContext(mergeKubeConfigs(files), context);
}

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The pod's service account (client-go's InClusterConfig), its token re-read as the kubelet rotates it. */
export function inClusterConfig(env: NodeJS.ProcessEnv = process.env, root = SERVICE_ACCOUNT): LoadedKubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST!;
  const port = env.KUBERNETES_SERVICE_PORT;
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const server = `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  return new LoadedKubeConfig({ server, caFile: join(root, 'ca.crt') }, { tokenFile: join(root, 'token') });
}

/** The kubeconfig files kubectl would read: --kubeconfig, else $KUBECONFIG (existing ones, each once), else ~/.kube/config. */
export function kubeConfigFiles(path: string | undefined, env: NodeJS.ProcessEnv = process.env, home = homedir()): string[] {
  if (path) return [path];
  const fallback = join(home, '.kube', 'config');
  if (env.KUBECONFIG) return [...new Set(env.KUBECONFIG.split(delimiter))].filter((f) => f && existsSync(f));
  return existsSync(fallback) ? [fallback] : [];
}

/**
 * The cluster to talk to: the given kubeconfig file, else $KUBECONFIG or
 * ~/.kube/config, else in-cluster; `context` picks a context other than the
 * current one. Throws a KubeConfigError naming the field it will not use.
 */
export function loadKubeConfig(path?: string, context?: string): LoadedKubeConfig {
  const files = kubeConfigFiles(path);
  if (files.length === 0) {
    if (process.env.KUBERNETES_SERVICE_HOST && !context) return inClusterConfig();
    throw new NoClusterError();
  }
  return parseKubeConfig(files.map((f) => {
    let text: string;
    try { text = readFileSync(f, 'utf8'); } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new KubeConfigError(`kubeconfig ${f}: ${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message}`);
    }
    return { text, dir: dirname(f), path: f };
  }), context);
}
