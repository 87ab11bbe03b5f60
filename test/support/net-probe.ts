// Preloaded into a Node controller the bench spawns (node --import), to count
// exactly the TCP connections it opens to the API server: Node publishes every
// client socket, TLS ones included, on the `net.client.socket` diagnostics
// channel. One byte is appended to BENCH_NET_PROBE_FILE per connection, so its
// size is the count. Sampling /proc misses connections that open and close
// between two samples; this does not, but only works for Node processes.
import { subscribe } from 'node:diagnostics_channel';
import { appendFileSync } from 'node:fs';
import type { Socket } from 'node:net';

const file = process.env.BENCH_NET_PROBE_FILE;
const port = Number(process.env.BENCH_NET_PROBE_PORT);
if (file && port) {
  subscribe('net.client.socket', (message) => {
    const { socket } = message as { socket: Socket };
    socket.once('connect', () => { if (socket.remotePort === port) appendFileSync(file, '.'); });
  });
}
