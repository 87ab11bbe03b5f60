// A stand-in for a Service with its EndpointSlice controller and kube-proxy,
// on 127.0.0.1: a TCP balancer in front of operator replicas. Like a
// kubelet's readiness probe (periodSeconds 1, failureThreshold 1), it polls
// each replica's /readyz and sends a new connection only to a replica whose
// last answer was 200, round robin; with none ready it closes the
// connection at once (kube-proxy rejects a Service without endpoints). A connection
// already open stays with its replica until either side closes it, as
// conntrack keeps an established flow after its endpoint left the Service.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Endpoint {
  name: string;
  /** The replica's webhook port (the Service's targetPort). */
  port: number;
  /** Its health server, probed at /readyz. */
  healthPort: number;
}

export interface Balancer {
  port: number;
  /** An endpoint joins the slice not ready; the next probe decides. */
  add(endpoint: Endpoint): void;
  /** The pod is gone: no new connections, and no more probes. */
  remove(name: string): void;
  /** Names of the endpoints whose last probe answered 200. */
  ready(): string[];
  /** Connections sent to each endpoint so far, removed ones included. */
  routed(): Record<string, number>;
  close(): Promise<void>;
}

export async function startBalancer(opts: { periodMs?: number } = {}): Promise<Balancer> {
  const endpoints = new Map<string, Endpoint & { ready: boolean }>();
  const routed: Record<string, number> = {};
  const sockets = new Set<Socket>();
  let next = 0;

  const server: Server = createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    const ready = [...endpoints.values()].filter((e) => e.ready);
    // A plain close, not resetAndDestroy(): with resets here the test process sometimes (4 runs in 9)
    // spun at exit in libuv's handle cleanup (perf: uv_run in Environment::CleanupHandles); with
    // destroy() 4 runs in 4 exited. The caller fails either way.
    if (ready.length === 0) return void client.destroy();
    const target = ready[next++ % ready.length]!;
    routed[target.name] = (routed[target.name] ?? 0) + 1;
    const upstream = connect(target.port, '127.0.0.1');
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    // Either side going away takes the other with it, as a proxied TCP flow would.
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));

  const probe = async (e: Endpoint & { ready: boolean }) => {
    try {
      const r = await fetch(`http://127.0.0.1:${e.healthPort}/readyz`, { signal: AbortSignal.timeout(1000) });
      await r.text();
      e.ready = r.status === 200;
    } catch {
      e.ready = false;
    }
  };
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      await Promise.all([...endpoints.values()].map(probe));
      await new Promise((r) => setTimeout(r, opts.periodMs ?? 1000));
    }
  };
  const probing = loop();

  return {
    port: (server.address() as { port: number }).port,
    add: (e) => void endpoints.set(e.name, { ...e, ready: false }),
    remove: (name) => void endpoints.delete(name),
    ready: () => [...endpoints.values()].filter((e) => e.ready).map((e) => e.name),
    routed: () => ({ ...routed }),
    close: async () => {
      stopped = true;
      await probing;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
