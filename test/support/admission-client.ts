// Talking to the webhook server directly, the way the API server does (and
// the way anyone else on the network could): AdmissionReviews over HTTPS,
// trusting the webhook CA. Used by the DoS tests and the benchmark.
import { type Agent, request } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { CoreV1Api } from '@kubernetes/client-node';
import type { Pod } from '../../src/webhook/pod.ts';

export interface Answer {
  status: number;
  body: string;
}

/** The webhook CA (ca.crt of agent-identity-webhook-root), which the serving certificate chains to. */
export async function webhookCA(kc: KubeConfig, namespace: string): Promise<string> {
  const s = await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace, name: 'agent-identity-webhook-root' });
  return Buffer.from(s.data!['ca.crt']!, 'base64').toString('utf8');
}

export function review(pod: Pod, namespace: string, uid = `u-${Math.random().toString(36).slice(2)}`): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
    request: { uid, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace, operation: 'CREATE', object: pod },
  });
}

export interface SendOptions {
  method?: string;
  body?: string | Buffer;
  chunks?: Iterable<Buffer>;
  headers?: Record<string, string>;
  /** Keep-alive connections, as the API server holds them; default a connection per request. */
  agent?: Agent;
  /** The name the serving certificate is checked against; default the IP 127.0.0.1. */
  servername?: string;
}

/**
 * One request. `body` is sent with its Content-Length;
 * `chunks` are streamed without one. Resolves with the answer, or with status
 * 0 when the server closed the connection first (what a refused upload may see).
 */
export function send(port: number, ca: string, path: string, opts: SendOptions = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
    if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'POST', ca, agent: opts.agent ?? false, headers, ...(opts.servername ? { servername: opts.servername } : {}) }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    if (opts.chunks) {
      const it = opts.chunks[Symbol.iterator]();
      const pump = () => {
        for (let n = it.next(); !n.done; n = it.next()) if (!req.write(n.value)) return void req.once('drain', pump);
        req.end();
      };
      pump();
    } else {
      req.end(opts.body);
    }
  });
}
