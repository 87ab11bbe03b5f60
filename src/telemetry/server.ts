// /healthz (the process is serving), /readyz (the caller's readiness: the
// operator's is webhook/readiness.ts; the reason when not), /metrics. One
// listener shared by the operator and the identity proxy, so both expose
// Prometheus text the same way. Imports nothing of ours.
import { createServer, type Server } from 'node:http';

/** What /metrics serves: the text exposition and its content type. */
export interface MetricsSource {
  text(): Promise<string>;
  readonly contentType: string;
}

/** Structurally webhook/readiness.ts's Readiness. */
export type ReadinessOf = () => { ready: true } | { ready: false; reason: string };

export interface HealthServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(host: string, port: number, ready: ReadinessOf, metrics: MetricsSource): Promise<HealthServer> {
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
