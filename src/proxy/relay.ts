// One request relayed to the next hop and its answer relayed back, shared by
// both directions: body capped, hop-by-hop headers dropped both ways, an
// upstream failure turned into a status and a one-line body (or a cut
// stream, once the answer has started).
import type http from 'node:http';
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
 * Sends `req`'s body (at most `maxBodyBytes`) into `upstream` and the answer
 * back to `res`, with backpressure both ways. `fail` turns an upstream error
 * into what the client is told. Resolves when the exchange is over, either way.
 *
 * Plain 'data'/'drain' wiring rather than stream.pipeline: pipeline makes an
 * AbortController, a DOMException and end-of-stream watchers per stream per
 * request; without them the proxies spend about 45 % less CPU per request
 * (docs/performance.md).
 */
export function relay(req: http.IncomingMessage, res: http.ServerResponse, upstream: http.ClientRequest, maxBodyBytes: number, fail: (err: Error) => Failure): Promise<void> {
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
      else if (res.headersSent) res.destroy();
      else {
        const f = fail(err);
        // A body still coming in is not read any further: the connection ends after the answer.
        sendError(res, f.status, f.message, !req.complete);
      }
      finish();
    };
    upstream.on('response', (answer: http.IncomingMessage) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, forwardHeaders(answer.rawHeaders));
      forward(answer, res);
      answer.once('end', () => res.end());
      // The peer or the app cut the answer short: so is the client's.
      answer.once('close', () => {
        if (!answer.complete) res.destroy();
      });
    });
    upstream.on('error', failed);
    // Over (answered, or the client went away): stop the upstream exchange if it is not.
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
      finish();
    });
    let seen = 0;
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > maxBodyBytes) {
        req.pause();
        failed(new BodyTooLarge(maxBodyBytes));
      } else if (!upstream.write(chunk)) req.pause();
    });
    upstream.on('drain', () => req.resume());
    req.once('end', () => {
      if (seen <= maxBodyBytes) upstream.end();
    });
    // The client went away mid-body.
    req.once('error', failed);
  });
}

/** `from`'s bytes into `to`, pausing while `to` is full. */
function forward(from: http.IncomingMessage, to: http.ServerResponse): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
}
