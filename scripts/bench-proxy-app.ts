// The app behind every path of `make bench-proxy`: reads the request body and
// answers 1 KB. `plain`: HTTP on 127.0.0.1, as an agent behind its proxy
// serves; `sdk DIR`: the SDK's mTLS server with the identity in DIR, as an
// agent that imports the SDK serves. Prints {"event":"listening","port":N}.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpsServer, loadIdentity } from '../src/sdk/index.ts';

const BODY = Buffer.alloc(1024, 'x');
const handler: http.RequestListener = (req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY.length }).end(BODY));
};

const [kind, dir] = process.argv.slice(2);
const server = kind === 'sdk' ? createHttpsServer(await loadIdentity({ dir }), {}, handler) : http.createServer(handler);
// Keep-alive outlasts the bench's pauses between runs.
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ event: 'listening', port: (server.address() as AddressInfo).port })}\n`));
process.on('SIGTERM', () => process.exit(0));
