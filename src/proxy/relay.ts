// One request relayed to the next hop and its answer relayed back, shared by
// both directions: body capped, hop-by-hop headers dropped both ways, an
// upstream failure turned into a status and a one-line body (or a cut
// stream, once the answer has started).
import type http from 'node:http';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream';
import { forwardHeaders } from './headers.ts';
import { BodyTooLarge } from './limits.ts';

export interface Failure {
  status: number;
  message: string;
}

/** A short text answer; `close` ends the connection after it. */
export function sendError(res: http.ServerResponse, status: number, message: string, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${message}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...(close ? { connection: 'close' } : {}) });
  res.end(body);
}

/**
 * Sends `req`'s body through `cap` into `upstream` and the answer back to
 * `res`. `fail` turns an upstream error into what the client is told.
 * Resolves when the exchange is over, either way.
 */
export function relay(req: http.IncomingMessage, res: http.ServerResponse, upstream: http.ClientRequest, cap: Transform, fail: (err: Error) => Failure): Promise<void> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = () => {
      if (!settled) {
        settled = true;
        resolve();
      }
    };
    const failed = (err: Error) => {
      if (settled) return;
      upstream.destroy();
      if (err instanceof BodyTooLarge) sendError(res, 413, `agent-identity proxy: ${err.message}`, true);
      else {
        const f = fail(err);
        sendError(res, f.status, f.message);
      }
      finish();
    };
    upstream.on('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, forwardHeaders(answer.rawHeaders));
      pipeline(answer, res, () => finish());
    });
    upstream.on('error', (err) => failed(err));
    // The client went away: stop the upstream exchange too.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
      finish();
    });
    pipeline(req, cap, upstream, (err) => {
      if (err && !res.headersSent) failed(err);
    });
  });
}
