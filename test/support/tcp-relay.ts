// A TCP relay in front of the API server that a test can cut, as a load
// balancer, a NAT or a vanished node would: every connection through it is
// closed at once, with whatever requests were on it. It moves bytes only
// (TLS runs end to end), so the client still talks to the real API server.
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

export interface TcpRelay {
  /** The relay's URL, to put in a kubeconfig; the API server's certificate names 127.0.0.1, so it verifies. */
  server: string;
  /** Closes every relayed connection: 'end' as a peer that closes (FIN), 'reset' as one that aborts (RST). Returns how many. */
  cut(how: 'end' | 'reset'): number;
  /** From now on no byte passes either way and no connection gets through, yet none is closed: a network partition, seen from the client. */
  partition(): void;
  close(): Promise<void>;
}

export async function startTcpRelay(target: string): Promise<TcpRelay> {
  const { hostname, port } = new URL(target);
  const open = new Set<[Socket, Socket]>();
  const held = new Set<Socket>();
  let partitioned = false;
  const relay = createServer((client) => {
    if (partitioned) { held.add(client.pause().on('error', () => client.destroy())); return; }
    const upstream = connect(Number(port), hostname);
    const pair: [Socket, Socket] = [client, upstream];
    open.add(pair);
    const drop = () => { open.delete(pair); client.destroy(); upstream.destroy(); };
    for (const s of pair) s.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const cut = (how: 'end' | 'reset') => {
    const pairs = [...open];
    for (const [client, upstream] of pairs) {
      if (how === 'reset') client.resetAndDestroy();
      else client.destroy();
      upstream.destroy();
    }
    return pairs.length;
  };
  const partition = () => {
    partitioned = true;
    for (const [client, upstream] of open) {
      client.unpipe(upstream).pause();
      upstream.unpipe(client).pause();
    }
  };
  return {
    partition,
    server: `https://127.0.0.1:${(relay.address() as AddressInfo).port}`,
    cut,
    close: () => {
      cut('end');
      for (const s of held) s.destroy();
      return new Promise((resolve) => relay.close(() => resolve()));
    },
  };
}
