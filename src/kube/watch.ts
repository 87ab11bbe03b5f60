// One watch request: GET ?watch=1 on the shared pool, newline-delimited JSON
// events (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR) handed on one by one
// (the API server's watch protocol; client-node's watch.js reads it the same
// way). It is not paced: it is one request held open for minutes.
import type { KubeConfig } from './config.ts';
import { KubeError, statusError, toKubeError } from './errors.ts';
import { open } from './transport.ts';

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

const TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

/** One line of a watch stream; undefined for a blank or garbled one (client-node skips those too). */
export function parseWatchLine<T>(line: string): WatchEvent<T> | undefined {
  if (line.trim() === '') return undefined;
  try {
    const e = JSON.parse(line) as { type?: unknown; object?: unknown };
    return typeof e?.type === 'string' && TYPES.has(e.type) && e.object && typeof e.object === 'object' ? (e as WatchEvent<T>) : undefined;
  } catch {
    return undefined;
  }
}

/** Splits a stream's chunks into lines: the complete ones now, the tail with the next chunk. */
export class LineSplitter {
  private tail = '';
  push(chunk: string): string[] {
    const lines = (this.tail + chunk).split('\n');
    this.tail = lines.pop()!;
    return lines;
  }
}

export interface WatchQuery {
  resourceVersion: string;
  labelSelector?: string;
  fieldSelector?: string;
  timeoutSeconds: number;
}

/**
 * Watches `path` from resourceVersion, calling onEvent for each event, until
 * the API server ends the watch (timeoutSeconds) or `signal` aborts it.
 * Rejects with a KubeError: the HTTP status when the watch is refused, the
 * Status of an ERROR event (410 Gone: relist), code 0 when the connection broke.
 */
export async function watch<T>(kc: KubeConfig, path: string, query: WatchQuery, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
  const res = await open(kc, {
    method: 'GET', path, query: { watch: 1, allowWatchBookmarks: true, ...query },
  }, signal, { bodyTimeout: 0 }).catch((e: unknown) => { throw toKubeError(e); });
  if (res.statusCode !== 200) throw statusError(res.statusCode, await res.body.text().catch(() => ''));
  const lines = new LineSplitter();
  let failed: KubeError | undefined;
  try {
    res.body.setEncoding('utf8');
    for await (const chunk of res.body as AsyncIterable<string>) {
      for (const line of lines.push(chunk)) {
        const e = parseWatchLine<T>(line);
        if (!e) continue;
        if (e.type === 'ERROR') {
          const s = e.object as { code?: number; reason?: string; message?: string };
          failed = new KubeError(s.code ?? 500, s.reason ?? 'Unknown', s.message ?? 'watch error');
        } else {
          onEvent(e);
        }
      }
    }
  } catch (e) {
    throw toKubeError(e);
  }
  if (failed) throw failed;
}
