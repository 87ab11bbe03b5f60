// Stand-ins for the *other* servers a kubeconfig names, to prove which one a
// credential reaches: HTTPS servers on 127.0.0.1 that record the Authorization
// and Impersonate-* headers and the client certificate of each request, a
// CONNECT proxy and a SOCKS5 proxy that record what they forwarded (they send
// any name to 127.0.0.1, so a name only they can reach proves a request went
// through them).
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Pem } from './certs.ts';

export interface Seen {
  authorization?: string;
  /** The client certificate's CN, if one was presented. */
  cn?: string;
  /** Every Impersonate-* header, each value separately. */
  impersonate: Record<string, string[]>;
}

export interface FakeServer {
  port: number;
  seen: Seen[];
  /** Answer 401 to requests bearing these tokens. */
  refuse: Set<string>;
  close(): Promise<void>;
}

const listen = (srv: Server) => new Promise<number>((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as AddressInfo).port)));
const closed = (srv: Server) => new Promise<void>((r) => { srv.close(() => r()); (srv as { closeAllConnections?: () => void }).closeAllConnections?.(); });

export async function startFakeServer(serving: Pem, clientCA: string): Promise<FakeServer> {
  const seen: Seen[] = [];
  const refuse = new Set<string>();
  const srv = createHttpsServer({ cert: serving.cert, key: serving.key, ca: clientCA, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const impersonate: Record<string, string[]> = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i]!.toLowerCase();
      if (k.startsWith('impersonate-')) (impersonate[k] ??= []).push(req.rawHeaders[i + 1]!);
    }
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    const s: Seen = { impersonate };
    if (req.headers.authorization) s.authorization = req.headers.authorization;
    if (peer?.subject?.CN) s.cn = String(peer.subject.CN);
    seen.push(s);
    const token = req.headers.authorization?.replace(/^Bearer /, '');
    const code = token && refuse.has(token) ? 401 : 200;
    res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(code === 200 ? { kind: 'List', items: [], gitVersion: 'fake' } : { kind: 'Status', code, reason: 'Unauthorized', message: 'Unauthorized' }));
  });
  return { port: await listen(srv), seen, refuse, close: () => closed(srv) };
}

export interface RecordingProxy { port: number; forwarded: string[]; close(): Promise<void> }

/** Pipes a client to 127.0.0.1:port, recording "host:port". */
function forward(client: Socket, forwarded: string[], host: string, port: number, reply: () => Buffer | string): void {
  forwarded.push(`${host}:${port}`);
  const upstream = connect(port, '127.0.0.1', () => {
    client.write(reply());
    upstream.pipe(client).pipe(upstream);
  });
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
}

/** An HTTP proxy that only tunnels (CONNECT), as an HTTPS API server needs. */
export async function startConnectProxy(): Promise<RecordingProxy> {
  const forwarded: string[] = [];
  const srv = createHttpServer((_req, res) => res.writeHead(405).end());
  srv.on('connect', (req, client: Socket) => {
    const m = /^(.*):(\d+)$/.exec(req.url ?? '');
    if (!m) { client.end('HTTP/1.1 400 Bad Request\r\n\r\n'); return; }
    forward(client, forwarded, m[1]!.replace(/^\[|\]$/g, ''), Number(m[2]), () => 'HTTP/1.1 200 Connection Established\r\n\r\n');
  });
  return { port: await listen(srv), forwarded, close: () => closed(srv) };
}

/** A SOCKS5 proxy (RFC 1928) without authentication, CONNECT only. */
export async function startSocksProxy(): Promise<RecordingProxy> {
  const forwarded: string[] = [];
  const srv = createTcpServer((client) => {
    let buf = Buffer.alloc(0);
    let greeted = false;
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!greeted) {
        if (buf.length < 2 || buf.length < 2 + buf[1]!) return;
        buf = buf.subarray(2 + buf[1]!);
        greeted = true;
        client.write(Buffer.from([5, 0]));
      }
      if (buf.length < 5) return;
      const atyp = buf[3]!;
      const addrLen = atyp === 1 ? 4 : atyp === 4 ? 16 : 1 + buf[4]!;
      if (buf.length < 4 + addrLen + 2) return;
      const addr = buf.subarray(4, 4 + addrLen);
      const host = atyp === 3 ? addr.subarray(1).toString() : atyp === 1 ? [...addr].join('.') : addr.toString('hex');
      const port = buf.readUInt16BE(4 + addrLen);
      client.off('data', onData);
      forward(client, forwarded, host, port, () => Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
    };
    client.on('data', onData);
  });
  return { port: await listen(srv), forwarded, close: () => closed(srv) };
}
