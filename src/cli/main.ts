#!/usr/bin/env node
// agent-identity: inspect and steer the operator from a terminal or script.
import { parseArgs } from 'node:util';
import { DEFAULT_OPERATOR_NAMESPACE } from '../api/names.ts';
import { KubeClient, loadKubeConfig, NoClusterError } from '../kube/client.ts';
import { Commands, type Output } from './commands.ts';

const USAGE = `usage: agent-identity <command> [options]

  status [-n NAMESPACE]                      identities with Ready, SPIFFE ID, expiry and next renewal
  renew NAME -n NAMESPACE | --all | -l SEL   renew now (sets the renew-requested-at annotation)
  ca status [TRUSTDOMAIN]                    roots, intermediate, rotation progress
  ca rotate TRUSTDOMAIN                      rotate the root now (sets the rotate-requested-at annotation)
  inspect secret NAME -n NAMESPACE           the chain, SANs, validity, fingerprints, and whether the bundle trusts it
  check [--operator-namespace NS]            API server, CRDs, leader Lease and webhook caBundle (if in use), TrustDomains

options: -n/--namespace, -A/--all-namespaces, -l/--selector, --all, -o/--output table|json, --kubeconfig PATH, --context NAME
exit status: 0 ok, 1 a failure (or a failed check), 2 a usage error or no cluster configured
`;

/** Wrong arguments or no cluster: exit 2, as for the operator. */
class UsageError extends Error {}

async function run(argv: string[]): Promise<{ out: Output; json: boolean }> {
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
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) return { out: { text: USAGE, json: null }, json: false };
  if (values.output !== 'table' && values.output !== 'json') throw new UsageError(`-o must be table or json, got "${values.output}"`);
  return { out: await dispatch(values, positionals), json: values.output === 'json' };
}

async function dispatch(values: { namespace?: string; 'all-namespaces'?: boolean; selector?: string; all?: boolean; kubeconfig?: string; context?: string; 'operator-namespace'?: string }, positionals: string[]): Promise<Output> {
  const c = new Commands(new KubeClient(loadKubeConfig(values.kubeconfig, values.context)));
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
  process.stderr.write(`agent-identity: ${(err as Error).message}\n`);
  const usage = err instanceof UsageError || err instanceof NoClusterError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS_');
  process.exitCode = usage ? 2 : 1;
}
