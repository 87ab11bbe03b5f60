// An SDK agent in its own process, driven by the integration tests. It
// reports what happens as JSON lines on stdout.
//   server <dir>                 echo server: greets each admitted peer, then echoes
//   client <dir> <port> <id>     reads commands on stdin: "connect", "send <conn> <text>"
import type { TLSSocket } from 'node:tls';
import { createInterface } from 'node:readline';
import { connect, createServer, loadIdentity, PeerRefusedError, peerIdentity } from '../../src/sdk/index.ts';

const [mode, dir, port, expected] = process.argv.slice(2);
const report = (event: string, fields: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);

// The watch alone should catch swaps; a long poll keeps it honest.
const identity = await loadIdentity({ dir: dir!, pollIntervalMs: 60_000 });
identity.on('update', (i) => report('update', { serialNumber: i.svid.serialNumber }));
identity.on('reloadError', (err) => report('reloadError', { message: err.message }));

if (mode === 'server') {
  const server = createServer(identity, {}, (socket) => {
    const peer = peerIdentity(socket)!;
    report('accepted', { peer: peer.spiffeID.toString(), rule: peer.rule });
    socket.on('error', () => undefined);
    socket.write(`hello ${peer.spiffeID} (${peer.rule})\n`);
    socket.pipe(socket);
  });
  server.on('refused', (err: PeerRefusedError) => report('refused', { reason: err.reason, message: err.message }));
  server.listen(0, '127.0.0.1', () => report('listening', { port: (server.address() as { port: number }).port }));
} else {
  const sockets: (TLSSocket | undefined)[] = [];
  for await (const line of createInterface({ input: process.stdin })) {
    const [command, n, ...text] = line.split(' ');
    if (command === 'connect') {
      const conn = sockets.length;
      try {
        const socket = await connect(identity, '127.0.0.1', Number(port), { authorize: expected! });
        sockets.push(socket);
        report('connected', { conn, serialNumber: peerIdentity(socket)!.serialNumber });
        socket.on('data', (d) => report('data', { conn, data: String(d) }));
        socket.on('error', (err) => report('socketError', { conn, message: err.message }));
        socket.on('close', () => report('closed', { conn }));
        // A server that refused us may have hung up already.
        if (socket.destroyed) report('closed', { conn });
      } catch (err) {
        sockets.push(undefined);
        report('connectError', { conn, reason: err instanceof PeerRefusedError ? err.reason : undefined, message: (err as Error).message });
      }
    } else if (command === 'send') {
      sockets[Number(n)]?.write(`${text.join(' ')}\n`);
    }
  }
  identity.close();
  for (const s of sockets) s?.destroy();
}
