#!/usr/bin/env node
// agent-identity: inspect and steer the operator from a terminal or script.
import { parseArgs } from 'node:util';
import { LABEL_AGENT } from '../api/group.ts';
import { DEFAULT_OPERATOR_NAMESPACE, PROXY_CONTAINER } from '../api/names.ts';
import { parseDuration } from '../api/duration.ts';
import type { KubeClient } from '../kube/client.ts';
import { KubeError } from '../kube/errors.ts';
import type { Commands, Output } from './commands.ts';
import { ApiFailure, ConfigError, exitStatusOf, kubeconfigError, report, UsageError } from './errors.ts';

const USAGE = `usage: agent-identity <command> [options]

  status [-n NAMESPACE]                      identities with Ready, SPIFFE ID, expiry and next renewal
  renew NAME -n NAMESPACE | --all | -l SEL   renew now (sets the renew-requested-at annotation)
  ca status [TRUSTDOMAIN]                    roots, intermediate, rotation progress
  ca rotate TRUSTDOMAIN                      rotate the root now (sets the rotate-requested-at annotation)
  inspect secret NAME -n NAMESPACE           the chain, SANs, validity, fingerprints, and whether the bundle trusts it
  check [--operator-namespace NS]            API server, CRDs, leader Lease and webhook caBundle (if in use), TrustDomains
  proxy [--help]                             the identity proxy beside an agent: mTLS in (--inbound-port) and out (--outbound-port)
  audit [-f FILE] | -n NS|-A [-l SEL]        who called what through the proxies, from their audit lines (-o table|json|dot|mermaid)

options: -n/--namespace, -A/--all-namespaces, -l/--selector, --all, -o/--output table|json, --kubeconfig PATH, --context NAME,
         -f/--filename FILE, -c/--container NAME, --since DURATION (audit),
         --request-timeout DURATION (each API request; default 30s, 0 for none), --debug (a failure's stack trace)
exit status: 0 ok, 1 a failure (or a failed check), 2 a usage error, or no usable kubeconfig
`;

/**
 * Unlike kubectl's (none), the default bounds each request: a person at a
 * terminal facing a server that accepted the connection and never answers
 * should hear why, not wait for TCP to give up minutes later.
 */
const DEFAULT_REQUEST_TIMEOUT = '30s';

async function run(argv: string[]): Promise<{ out: Output; json: boolean }> {
  // Long-running, with its own flags and no kubeconfig.
  if (argv[0] === 'proxy') return { out: await (await import('./proxy.ts')).proxyCommand(argv.slice(1)), json: false };
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      namespace: { type: 'string', short: 'n' },
      'all-namespaces': { type: 'boolean', short: 'A' },
      selector: { type: 'string', short: 'l' },
      all: { type: 'boolean' },
      output: { type: 'string', short: 'o', default: 'table' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      'operator-namespace': { type: 'string', default: DEFAULT_OPERATOR_NAMESPACE },
      'request-timeout': { type: 'string', default: DEFAULT_REQUEST_TIMEOUT },
      debug: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      filename: { type: 'string', short: 'f' },
      container: { type: 'string', short: 'c' },
      since: { type: 'string' },
    },
  });
  if (positionals[0] === 'audit') return { out: await audit({ ...values, extra: positionals[1] }), json: values.output === 'json' && !values.help };
  if (values.help || positionals.length === 0) return { out: { text: USAGE, json: null }, json: false };
  const auditOnly = (['filename', 'container', 'since'] as const).find((f) => values[f] !== undefined);
  if (auditOnly) throw new UsageError(`--${auditOnly} is an option of audit only`);
  if (values.output !== 'table' && values.output !== 'json') throw new UsageError(`-o must be table or json, got "${values.output}"`);
  return { out: await dispatch(values, positionals), json: values.output === 'json' };
}

type Values = {
  namespace?: string; 'all-namespaces'?: boolean; selector?: string; all?: boolean; kubeconfig?: string; context?: string; 'operator-namespace'?: string; 'request-timeout'?: string;
  output?: string; filename?: string; container?: string; since?: string;
};

/** `audit`: a file or stdin needs no cluster; -n, -A or -l read the proxies' logs through the API server. */
async function audit(values: Values & { help?: boolean; extra?: string }): Promise<Output> {
  const { AUDIT_FORMATS, AUDIT_USAGE, auditOutput, readAuditFile, readPodLogs } = await import('./audit.ts');
  if (values.help) return { text: AUDIT_USAGE, json: null };
  if (values.extra) throw new UsageError(`audit takes no arguments, got "${values.extra}"`);
  const format = AUDIT_FORMATS.find((f) => f === values.output);
  if (!format) throw new UsageError(`-o must be ${AUDIT_FORMATS.join(', ')}, got "${values.output}"`);
  const fromPods = values.namespace !== undefined || values['all-namespaces'] || values.selector !== undefined;
  if (fromPods && values.filename !== undefined) throw new UsageError('audit reads -f FILE or the pods\' logs (-n, -A, -l), not both');
  if (!fromPods) {
    if (values.filename === undefined && process.stdin.isTTY) throw new UsageError(`audit needs its lines: -f FILE, a pipe, or -n/-A to read the proxies' logs\n\n${AUDIT_USAGE}`);
    return auditOutput(await readAuditFile(values.filename ?? '-'), format);
  }
  if (values.namespace === undefined && !values['all-namespaces']) throw new UsageError('audit -l needs -n NAMESPACE or -A');
  let sinceSeconds: number | undefined;
  try {
    sinceSeconds = values.since === undefined ? undefined : Math.ceil(parseDuration(values.since) / 1000);
  } catch {
    throw new UsageError(`--since must be a duration such as 10m or 1h, got "${values.since}"`);
  }
  const read = await withKube(values, (kube) => readPodLogs(kube, {
    namespace: values['all-namespaces'] ? undefined : values.namespace, selector: values.selector ?? LABEL_AGENT,
    container: values.container ?? PROXY_CONTAINER, sinceSeconds,
  }));
  const failed = `the logs of ${read.failures.length} of ${read.pods} pods could not be read (the API server fetches them from each pod's kubelet): ${read.failures.join('; ')}`;
  if (read.failures.length === read.pods) throw new Error(failed);
  if (read.failures.length) {
    process.stderr.write(`agent-identity: ${failed}\n`);
    process.exitCode = 1;
  }
  return auditOutput(read, format);
}

/** As kubectl's --request-timeout: a duration (30s, 2m), a bare number of seconds, or 0 for none. */
function requestTimeoutMs(value: string | undefined): number | undefined {
  let ms: number;
  try {
    ms = /^\d+$/.test(value ?? '') ? Number(value) * 1000 : parseDuration(value ?? DEFAULT_REQUEST_TIMEOUT);
  } catch {
    throw new UsageError(`--request-timeout must be a duration such as 30s or 2m, or 0 for none, got "${value}"`);
  }
  if (ms < 0) throw new UsageError(`--request-timeout must not be negative, got "${value}"`);
  return ms === 0 ? undefined : ms;
}

async function dispatch(values: Values, positionals: string[]): Promise<Output> {
  const { Commands } = await import('./commands.ts');
  return withKube(values, (kube) => command(new Commands(kube), values, positionals));
}

/** Runs `fn` against the kubeconfig's server; an API call that fails becomes an ApiFailure naming that server. */
async function withKube<T>(values: Values, fn: (kube: KubeClient) => Promise<T>): Promise<T> {
  const timeoutMs = requestTimeoutMs(values['request-timeout']);
  // Loaded here, not above: `proxy` runs beside every agent and never talks to
  // the API server, so it must not pay for the kube client (undici) in memory.
  const { KubeClient, loadKubeConfig } = await import('../kube/client.ts');
  let kube: KubeClient;
  try {
    kube = new KubeClient(loadKubeConfig(values.kubeconfig, values.context), { timeoutMs });
  } catch (err) {
    throw kubeconfigError(err);
  }
  if (!kube.server) throw new ConfigError("the kubeconfig's current context names no cluster server");
  try {
    return await fn(kube);
  } catch (err) {
    // Every API call rejects with a KubeError (kube/errors.ts call()); anything else is the command's own.
    throw err instanceof KubeError ? new ApiFailure(kube.server, err, timeoutMs) : err;
  }
}

async function command(c: Commands, values: Values, positionals: string[]): Promise<Output> {
  const [cmd, sub, arg] = positionals;
  const ns = values['all-namespaces'] ? undefined : values.namespace;
  switch (cmd) {
    case 'status': return c.status(ns);
    case 'renew': return c.renew({ name: sub, namespace: ns, all: values.all, selector: values.selector });
    case 'ca':
      if (sub === 'status') return c.caStatus(arg);
      if (sub === 'rotate' && arg) return c.caRotate(arg);
      throw new UsageError('usage: agent-identity ca status [TRUSTDOMAIN] | ca rotate TRUSTDOMAIN');
    case 'inspect':
      if (sub !== 'secret' || !arg || !ns) throw new UsageError('usage: agent-identity inspect secret NAME -n NAMESPACE');
      return c.inspectSecret(arg, ns);
    case 'check': {
      const out = await c.check(values['operator-namespace'] ?? DEFAULT_OPERATOR_NAMESPACE);
      if (!out.ok) process.exitCode = 1;
      return out;
    }
    default:
      throw new UsageError(`unknown command "${cmd}"\n\n${USAGE}`);
  }
}

try {
  const { out, json } = await run(process.argv.slice(2));
  process.stdout.write(json ? JSON.stringify(out.json, null, 2) + '\n' : out.text);
} catch (err) {
  // Read from argv, not the parsed flags: a flag that fails to parse is reported with its stack too.
  process.stderr.write(report(err, process.argv.includes('--debug')));
  process.exitCode = exitStatusOf(err);
}
