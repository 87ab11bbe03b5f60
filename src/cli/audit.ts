// `agent-identity audit`: reads the proxies' audit lines (a file, stdin, or
// the logs of the proxy containers of the pods a selector picks), skips
// every other line, and prints who called what as a table, JSON, DOT or
// Mermaid. The folding and drawing are call-graph.ts's; here is the I/O.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { PROXY_CONTAINER } from '../api/names.ts';
import { parseAuditLine } from '../audit/line.ts';
import type { AuditRecord } from '../audit/record.ts';
import type { KubeClient } from '../kube/client.ts';
import { KubeError } from '../kube/errors.ts';
import { callGraphDot, callGraphMermaid, callTable, foldCalls } from './call-graph.ts';
import type { Output } from './commands.ts';
import { causeOf, UsageError } from './errors.ts';

export const AUDIT_FORMATS = ['table', 'json', 'dot', 'mermaid'] as const;
export type AuditFormat = (typeof AUDIT_FORMATS)[number];

export const AUDIT_USAGE = `usage: agent-identity audit [-f FILE|-] [-o table|json|dot|mermaid]
       agent-identity audit -n NAMESPACE|-A [-l SELECTOR] [-c CONTAINER] [--since DURATION] [-o ...]
  reads the identity proxies' audit lines (other lines are skipped): from FILE, from stdin (-f - or a pipe),
  or from the logs of the proxy container (-c, default ${PROXY_CONTAINER}) of the pods that -l selects
  (default: every pod the webhook gave a proxy); prints who called what, with denied calls
`;

/** Audit records in lines of text, and how many lines were something else. */
export interface Read {
  records: AuditRecord[];
  skipped: number;
}

export async function readAuditLines(input: Readable): Promise<Read> {
  const out: Read = { records: [], skipped: 0 };
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    const r = parseAuditLine(line);
    if (r) out.records.push(r);
    else if (line.trim()) out.skipped++;
  }
  return out;
}

export function readAuditFile(path: string): Promise<Read> {
  return readAuditLines(path === '-' ? process.stdin : createReadStream(path));
}

export interface PodSource {
  namespace: string | undefined;
  selector: string;
  container: string;
  sinceSeconds?: number;
}

/**
 * The proxies' logs through the API server (pods/log: the API server asks
 * each pod's kubelet). Pods without the container are passed over; a pod
 * whose log cannot be read is named in `failures` and the rest still count.
 */
export async function readPodLogs(kube: KubeClient, src: PodSource): Promise<Read & { pods: number; failures: string[] }> {
  const pods = (await kube.listPods(src.namespace, src.selector)).filter((p) =>
    [...(p.spec?.containers ?? []), ...(p.spec?.initContainers ?? [])].some((c) => c.name === src.container));
  if (!pods.length) throw new UsageError(`no pod ${src.namespace ? `in namespace ${src.namespace} ` : ''}matches -l ${src.selector} and has a container named ${src.container}`);
  const out = { records: [] as AuditRecord[], skipped: 0, pods: pods.length, failures: [] as string[] };
  await Promise.all(pods.map(async (p) => {
    const { namespace, name } = p.metadata as { namespace: string; name: string };
    let text: string;
    try {
      text = await kube.podLog(namespace, name, src.container, { sinceSeconds: src.sinceSeconds });
    } catch (err) {
      if (!(err instanceof KubeError)) throw err;
      out.failures.push(`${namespace}/${name}: ${causeOf(err)}`);
      return;
    }
    for (const line of text.split('\n')) {
      const r = parseAuditLine(line);
      if (r) out.records.push(r);
      else if (line.trim()) out.skipped++;
    }
  }));
  out.failures.sort();
  return out;
}

/** The records as the format asks; `-o json` carries the calls with full SPIFFE IDs. */
export function auditOutput(read: Read, format: AuditFormat): Output {
  const calls = foldCalls(read.records);
  const json = { records: read.records.length, skippedLines: read.skipped, calls };
  if (format === 'dot') return { text: callGraphDot(calls), json };
  if (format === 'mermaid') return { text: callGraphMermaid(calls), json };
  const note = read.records.length ? '' : `no audit lines found (${read.skipped} other lines skipped)\n`;
  return { text: callTable(calls) + note, json };
}
