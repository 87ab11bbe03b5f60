// An exec credential plugin (client.authentication.k8s.io v1 and v1beta1),
// run as client-go runs it: the kubeconfig's command and args, our environment
// plus its env and KUBERNETES_EXEC_INFO, the plugin's stderr passed through,
// its stdout an ExecCredential whose status holds a token, a client
// certificate, or both, and when they expire.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Cluster, ExecConfig } from './config.ts';

/** What a plugin answered; `expiresAt` (epoch ms) unset means "until the API server refuses it". */
export interface ExecCredential {
  token?: string;
  cert?: Buffer;
  key?: Buffer;
  expiresAt?: number;
}

/** Whether the plugin may talk to the user: client-go's rule, with stdin as the terminal it would use. */
export function isInteractive(exec: ExecConfig, stdinIsTTY = process.stdin.isTTY === true): boolean {
  return exec.interactiveMode === 'Always' || (exec.interactiveMode === 'IfAvailable' && stdinIsTTY);
}

/** KUBERNETES_EXEC_INFO: the request spec, with the cluster when the plugin asks for it (provideClusterInfo). */
export function execInfo(exec: ExecConfig, cluster: Cluster | null, interactive: boolean): string {
  const spec: Record<string, unknown> = { interactive };
  if (exec.provideClusterInfo && cluster) {
    const ca = cluster.caFile ? readFileSync(cluster.caFile).toString('base64') : cluster.caData;
    spec.cluster = Object.fromEntries(Object.entries({
      server: cluster.server,
      'tls-server-name': cluster.tlsServerName,
      'insecure-skip-tls-verify': cluster.skipTLSVerify || undefined,
      'certificate-authority-data': ca,
      'proxy-url': cluster.proxyUrl,
      config: cluster.execExtension,
    }).filter(([, v]) => v !== undefined));
  }
  return JSON.stringify({ apiVersion: exec.apiVersion, kind: 'ExecCredential', spec });
}

/** Reads a plugin's stdout; errors name the plugin and the field, never the output (it holds secrets). */
export function parseExecCredential(stdout: string, exec: ExecConfig): ExecCredential {
  const fail = (why: string): never => { throw new Error(`exec plugin "${exec.command}": ${why}`); };
  let doc: { apiVersion?: unknown; kind?: unknown; status?: Record<string, unknown> };
  try { doc = JSON.parse(stdout); } catch { return fail('its output is not JSON'); }
  if (doc?.kind !== 'ExecCredential') fail('its output is not an ExecCredential');
  if (doc.apiVersion !== exec.apiVersion) fail(`it answered apiVersion "${String(doc.apiVersion)}", the kubeconfig asked for "${exec.apiVersion}"`);
  const s = doc.status ?? fail('its ExecCredential has no status');
  const text = (k: string) => (typeof s[k] === 'string' && s[k] !== '' ? s[k] as string : undefined);
  const token = text('token');
  const cert = text('clientCertificateData');
  const key = text('clientKeyData');
  if (!!cert !== !!key) fail('status needs both clientCertificateData and clientKeyData, or neither');
  if (!token && !cert) fail('status holds neither a token nor a client certificate');
  const expiry = text('expirationTimestamp');
  const expiresAt = expiry === undefined ? undefined : Date.parse(expiry);
  if (Number.isNaN(expiresAt)) fail(`status.expirationTimestamp "${expiry}" is not a time`);
  return { token, cert: cert ? Buffer.from(cert) : undefined, key: key ? Buffer.from(key) : undefined, expiresAt };
}

/** Runs the plugin once. */
export async function runExecPlugin(exec: ExecConfig, cluster: Cluster | null): Promise<ExecCredential> {
  const interactive = isInteractive(exec);
  if (exec.interactiveMode === 'Always' && !interactive) {
    throw new Error(`exec plugin "${exec.command}": interactiveMode is Always, and stdin is not a terminal`);
  }
  const env = { ...process.env, ...Object.fromEntries((exec.env ?? []).map((e) => [e.name, e.value])), KUBERNETES_EXEC_INFO: execInfo(exec, cluster, interactive) };
  const stdout = await new Promise<string>((resolve, reject) => {
    // A plugin that is not interactive gets no stdin, as in client-go; its stderr is the user's to read.
    const child = spawn(exec.command, exec.args ?? [], { env, stdio: [interactive ? 'inherit' : 'ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'ENOENT' && exec.installHint ? `; ${exec.installHint.trim().replace(/\s*\n\s*/g, ' ')}` : '';
      reject(new Error(`exec plugin "${exec.command}": ${err.code === 'ENOENT' ? 'not found' : err.message}${hint}`));
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve(Buffer.concat(chunks).toString('utf8'));
      else reject(new Error(`exec plugin "${exec.command}" failed: ${signal ? `killed by ${signal}` : `exit status ${code}`}`));
    });
  });
  return parseExecCredential(stdout, exec);
}
