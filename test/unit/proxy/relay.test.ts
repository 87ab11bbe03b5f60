// The relay shared by both proxies (src/proxy/relay.ts), on loopback with
// plain HTTP on both sides: a body and its answer passed through, the body
// cap, and an upstream that fails while the client is still sending.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { relay } from '../../../src/proxy/relay.ts';

const MAX_BODY = 4096;
let upstream: http.Server;
let front: http.Server;
const failures: string[] = [];

before(async () => {
  // /echo answers with the body it read; /cut drops the connection as soon as the headers are in.
  upstream = http.createServer((req, res) => {
    if (req.url === '/cut') {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => res.writeHead(200, { 'x-upstream': 'yes' }).end(Buffer.concat(chunks)));
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  front = http.createServer((req, res) => {
    const out = http.request({ host: '127.0.0.1', port: (upstream.address() as AddressInfo).port, method: req.method, path: req.url, headers: { 'content-length': req.headers['content-length'] }, agent: false });
    void relay(req, res, out, MAX_BODY, (err) => {
      failures.push(err.message);
      return { status: 502, message: `upstream failed: ${(err as NodeJS.ErrnoException).code ?? err.message}` };
    });
  });
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
});

after(() => {
  front.closeAllConnections();
  front.close();
  upstream.closeAllConnections();
  upstream.close();
});

/** Raw bytes to the front server; resolves with everything it sent back once it closes the connection. */
function exchange(head: string, body: Buffer): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect((front.address() as AddressInfo).port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1').on('data', (d: string) => {
      text += d;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ text, closed: true }));
    // Never half-closed: node's server would take that as the end of the connection.
    socket.write(head);
    socket.write(body);
  });
}

describe('relay', () => {
  it('passes the body and the answer through', async () => {
    const body = Buffer.alloc(1000, 'a');
    const { text } = await exchange(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`, body);
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, /x-upstream: yes/i);
    assert.ok(text.includes(body.toString("latin1")), "the whole body came back");
  });

  it('a body over the cap gets 413 and the connection closes', async () => {
    const body = Buffer.alloc(MAX_BODY + 1, 'b');
    const { text, closed } = await exchange(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`, body);
    assert.match(text, /^HTTP\/1\.1 413 /);
    assert.match(text, /connection: close/i);
    assert.ok(closed);
  });

  it('an upstream that fails while the body is still arriving: 502 naming the failure, and the connection closes instead of waiting for the rest', async () => {
    // Half the declared body: the rest never comes, so only closing ends this exchange.
    const { text, closed } = await exchange('POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n', Buffer.alloc(1000, 'c'));
    assert.match(text, /^HTTP\/1\.1 502 /);
    assert.match(text, /connection: close/i);
    assert.match(text, /upstream failed: (ECONNRESET|EPIPE|socket hang up)/);
    assert.ok(closed);
    assert.ok(failures.length > 0);
  });
});
