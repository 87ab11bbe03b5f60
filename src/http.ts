// /healthz (the process is serving), /readyz (webhook/readiness.ts: the webhook serves a certificate
// the caBundle verifies, the leader's caches synced, not shutting down; the reason when not), /metrics.
import { createServer, type Server } from 'node:http';
import type { Readiness } from './webhook/readiness.ts';
/** What /metrics serves: the text exposition and its content type. */
export interface MetricsSource {
  text(): Promise<string>;
  readonly contentType: string;
}

export interface HealthServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(host: string, port: number, ready: () => Readiness, metrics: MetricsSource): Promise<HealthServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    if (path === '/readyz') {
      const r = ready();
      return void res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(r.ready ? 'ok\n' : `${r.reason}\n`);
    }
    if (path === '/metrics') {
      metrics.text().then(
        (body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(port, host, () => res()); });
  const actual = (server.address() as { port: number }).port;
  return { server, port: actual, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}
