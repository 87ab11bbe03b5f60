// `agent-identity audit -n/-A/-l` against a real kube-apiserver. The API
// server serves pods/log by asking the pod's kubelet; this control plane has
// no kubelet (and no scheduler), so no log can be served here: the pods name
// a node that does not exist (an unscheduled pod's log is served, empty). What is tested
// is the request path: which pods are asked for (selector, container), and
// that a log the API server cannot serve is named with its cause and fails the
// command, never passing for an empty audit. Reading the lines themselves is
// covered by test/unit/cli/audit.test.ts (file, stdin) on the same parser.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runCli } from '../support/cli.ts';
import { startTestEnv, type TestEnv } from '../support/env.ts';

let env: TestEnv;
let ns: string;

const pod = (name: string, labels: Record<string, string>, proxy: boolean) => JSON.stringify({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels },
  spec: {
    nodeName: 'node-without-kubelet',
    ...(proxy ? { initContainers: [{ name: 'agent-identity-proxy', image: 'agent-identity-operator:dev', restartPolicy: 'Always' }] } : {}),
    containers: [{ name: 'app', image: 'app:dev' }],
  },
});

before(async () => {
  env = await startTestEnv();
  ns = await env.namespace('audit');
  for (const p of [pod('tools-0', { 'agentidentity.dev/agent': 'tools' }, true), pod('plain-0', { 'agentidentity.dev/agent': 'plain' }, false)]) {
    const r = await env.kubectl(['apply', '-f', '-'], p);
    assert.equal(r.code, 0, r.stderr);
  }
});
after(async () => { await env?.stop(); });

const cli = (...args: string[]) => runCli(env.kubeconfigPath, 'audit', ...args);

test('asks for the proxy container\'s log of the selected pods; a log the API server cannot serve fails the command, naming the pod and the cause', async () => {
  const r = await cli('-n', ns);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '');
  // plain-0 has no proxy container: passed over, so "1 of 1".
  assert.match(r.stderr, new RegExp(`the logs of 1 of 1 pods could not be read \\(the API server fetches them from each pod's kubelet\\): ${ns}/tools-0: 404 Not Found: .*"node-without-kubelet" not found`));
});

test('-A finds the same pod across namespaces', async () => {
  const r = await cli('-A', '-l', 'agentidentity.dev/agent=tools');
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`${ns}/tools-0: 404`));
});

test('no pod with the container: a usage error that says what was looked for', async () => {
  const none = await cli('-n', ns, '-l', 'agentidentity.dev/agent=plain');
  assert.equal(none.code, 2);
  assert.match(none.stderr, new RegExp(`no pod in namespace ${ns} matches -l agentidentity.dev/agent=plain and has a container named agent-identity-proxy`));
  const container = await cli('-n', ns, '-c', 'app', '-l', 'agentidentity.dev/agent=plain');
  assert.equal(container.code, 1, 'with -c app the plain pod is asked for');
  assert.match(container.stderr, /plain-0: 404 Not Found/);
});
