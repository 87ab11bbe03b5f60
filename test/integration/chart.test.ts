// The Helm chart (helm/agent-identity-operator) and the kustomize base
// rendered from it (deploy/), against a real API server:
// - helm lint and helm template pass with default and non-default values, and
//   the values schema and template checks refuse bad values;
// - every rendered object is accepted by `kubectl apply --dry-run=server`,
//   with the chart's CRDs and prometheus-operator's real ServiceMonitor and
//   PrometheusRule CRDs installed (scripts/chart-monitoring-crds.sh: a pinned
//   release from the Go module proxy, so upstream's schema judges our objects);
// - helm install, upgrade and uninstall work, onto CRDs applied by kubectl and
//   after `make install` (whose objects the release adopts); the NOTES render;
// - `kubectl apply --server-side -k deploy/` on a fresh cluster does what
//   docs/install.md says;
// - scripts/chart-sync.sh --check passes, and fails with a diff on drift;
// - promtool checks the alerts and unit-tests when each one fires;
// - the operator, running as the chart's ServiceAccount with exactly the
//   chart's RBAC, brings the chart's TrustDomain and an AgentIdentity to Ready.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AuthorizationV1Api, KubeConfig } from '@kubernetes/client-node';
import { dump, load, loadAll } from 'js-yaml';
import { startTestEnv, runKubectl, waitEstablished, type TestEnv } from '../support/env.ts';
import { startControlPlane, resolveBinaries } from '../support/controlplane.ts';
import { runOperator, eventually, ensureNamespace, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady, secretText } from '../support/objects.ts';
import { loadConfig } from '../../src/config.ts';
import { Metrics } from '../../src/controller/metrics.ts';
import { DecisionMetrics } from '../../src/audit/metrics.ts';
import type { Operator } from '../../src/operator.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CHART = join(ROOT, 'helm', 'agent-identity-operator');
const RELEASE = 'agent-identity-operator';
// runOperator works in agent-identity-system, and the chart's leader-election
// Role lives in the release namespace: render with the same one.
const NAMESPACE = OPERATOR_NAMESPACE;
const SA_USER = `system:serviceaccount:${NAMESPACE}:${RELEASE}`;

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
}
// The rendered objects are checked field by field; a loose type keeps the
// test readable, and a wrong path simply fails the assertion.
type Loose = any; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Run { code: number; stdout: string; stderr: string }
function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Run> {
  return new Promise((res) => {
    const p = execFile(cmd, args, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      res({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
    if (opts.input !== undefined) p.stdin!.end(opts.input);
  });
}
const script = (name: string) => execFileSync('bash', [join(ROOT, 'scripts', name)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();

let env: TestEnv;
let helm: string;
let promtool: string;
let monitoringCRDs: string;
let tmp: string;
let customValues: string;
let op: Operator | undefined;

// A values file that moves every knob the brief cares about off its default.
const CUSTOM_VALUES = {
  replicas: 3,
  image: { repository: 'registry.example.com/platform/agent-identity-operator', digest: `sha256:${'ab'.repeat(32)}`, pullPolicy: 'Always' },
  imagePullSecrets: [{ name: 'regcred' }],
  trustDomains: [
    { name: 'default', trustDomain: 'cluster.local', ca: { selfSigned: { keyAlgorithm: 'Ed25519' } } },
    { name: 'partner', trustDomain: 'partner.example', ca: { secretRef: { namespace: NAMESPACE, name: 'partner-ca' } }, spiffeIDTemplate: 'ns/{namespace}/sa/{serviceAccount}' },
  ],
  minDuration: '30m',
  caDuration: '43800h',
  logLevel: 'debug',
  webhook: { port: 10443, failurePolicy: 'Ignore', timeoutSeconds: 10, namespaceSelector: { matchLabels: { 'agentidentity.dev/inject': 'enabled' } } },
  metrics: {
    port: 9090,
    service: { port: 9090, annotations: { 'prometheus.io/scrape': 'true' } },
    serviceMonitor: { enabled: true, interval: '1m', scrapeTimeout: '20s', labels: { release: 'prometheus' } },
    prometheusRule: { enabled: true, labels: { release: 'prometheus' }, alertLabels: { team: 'platform' } },
  },
  dashboard: { annotations: { grafana_folder: 'Security' } },
  bundleEndpoint: { enabled: true, port: 8444, service: { type: 'LoadBalancer', port: 443 }, ingress: { enabled: true, className: 'nginx', host: 'bundle.example.com', annotations: { 'nginx.ingress.kubernetes.io/ssl-passthrough': 'true' } } },
  federation: { refreshMin: '1m', refreshMax: '2h' },
  serviceAccount: { annotations: { 'example.com/owner': 'platform' } },
  podDisruptionBudget: { minAvailable: 2, maxUnavailable: null },
  priorityClassName: 'system-cluster-critical',
  nodeSelector: { 'kubernetes.io/os': 'linux' },
  tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'platform', effect: 'NoSchedule' }],
  affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64', 'arm64'] }] }] } } },
  podAnnotations: { 'example.com/scrape': 'true' },
  extraArgs: ['--http-host=0.0.0.0'],
};

before(async () => {
  helm = script('helm.sh');
  promtool = script('chart-promtool.sh');
  monitoringCRDs = script('chart-monitoring-crds.sh');
  tmp = mkdtempSync(join(tmpdir(), 'aio-chart-'));
  customValues = join(tmp, 'custom-values.yaml');
  writeFileSync(customValues, dump(CUSTOM_VALUES));
  env = await startTestEnv();
});
after(async () => {
  await op?.stop();
  await env?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** helm against the test control plane. */
const helmHere = (...args: string[]) => run(helm, [...args, '--kubeconfig', env.kubeconfigPath]);
/** "<release>/<namespace>" from Helm's ownership annotations on a cluster object (empty when absent or missing). */
async function helmOwner(kind: string, name: string): Promise<string> {
  const r = await env.kubectl(['get', kind, name, '--ignore-not-found', '-o', 'jsonpath={.metadata.annotations.meta\\.helm\\.sh/release-name}/{.metadata.annotations.meta\\.helm\\.sh/release-namespace}']);
  return r.stdout.trim();
}

// The Kubernetes the project is tested on serves MutatingAdmissionPolicy, which
// helm template's built-in capabilities lack: render as scripts/chart-sync.sh
// renders deploy/, and as helm install does against the test control plane.
const MUTATING_POLICY_API = 'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy';
async function template(args: string[] = [], capabilities = ['--api-versions', MUTATING_POLICY_API]): Promise<Run> {
  return run(helm, ['template', RELEASE, CHART, '--namespace', NAMESPACE, ...capabilities, ...args]);
}
async function render(args: string[] = [], capabilities?: string[]): Promise<{ text: string; objects: Obj[] }> {
  const r = await template(args, capabilities);
  assert.equal(r.code, 0, `helm template ${args.join(' ')} failed:\n${r.stderr}`);
  const objects = (loadAll(r.stdout) as Array<Obj | null>).filter((o): o is Obj => o !== null && typeof o === 'object');
  return { text: r.stdout, objects };
}
function one(objects: Obj[], kind: string, name?: string): Loose {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `exactly one ${kind}${name ? ` ${name}` : ''} (found ${found.map((o) => o.metadata.name).join(', ') || 'none'})`);
  return found[0];
}
const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding', 'TrustDomain', 'CustomResourceDefinition', 'Namespace', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);

/** The permissions the operator needs once rotation and the webhook land (the brief's list). */
const EXPECTED_CLUSTER_RULES = [
  { apiGroups: ['agentidentity.dev'], resources: ['agentidentities', 'trustdomains', 'clusterfederatedtrustdomains'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['agentidentity.dev'], resources: ['agentidentities/status', 'trustdomains/status'], verbs: ['get', 'patch', 'update'] },
  { apiGroups: ['agentidentity.dev'], resources: ['clusterfederatedtrustdomains/status'], verbs: ['patch'] },
  // Beyond the brief's list, needed by code in src/: the revocation finalizer
  // (patch on the AgentIdentity's metadata) and blockOwnerDeletion on the
  // identity Secret's owner reference (OwnerReferencesPermissionEnforcement).
  { apiGroups: ['agentidentity.dev'], resources: ['agentidentities'], verbs: ['patch'] },
  { apiGroups: ['agentidentity.dev'], resources: ['agentidentities/finalizers'], verbs: ['update'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'] },
  { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'] },
  { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
  // The identity proxy's NetworkPolicy per AgentIdentity with spec.proxy; replaced whole, never patched.
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'] },
  // An identity's ServiceAccount must exist (ServiceAccountNotFound); read from a cache.
  { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['list', 'watch'] },
  // The app-port check: only pods labelled agentidentity.dev/proxy are listed and watched; read only.
  { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
  { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
  // Create cannot be restricted by name; reads and updates only for the chart's TrustDomains.
  { apiGroups: ['certificates.k8s.io'], resources: ['clustertrustbundles'], verbs: ['create'] },
  { apiGroups: ['certificates.k8s.io'], resources: ['clustertrustbundles'], resourceNames: ['agentidentity-default'], verbs: ['get', 'update'] },
  // The pod-certificate signer: its requests (update: the ledger finalizer), answers through /status, sign on its one signer name.
  { apiGroups: ['certificates.k8s.io'], resources: ['podcertificaterequests'], verbs: ['get', 'list', 'watch', 'update'] },
  { apiGroups: ['certificates.k8s.io'], resources: ['podcertificaterequests/status'], verbs: ['update'] },
  { apiGroups: ['certificates.k8s.io'], resources: ['signers'], resourceNames: ['agentidentity.dev/svid'], verbs: ['sign'] },
  { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'], resourceNames: ['agent-identity-operator'], verbs: ['get', 'patch'] },
];
/** Every (group, resource, verb) a rule list grants, sorted: compares rule sets however they are grouped. */
function grants(rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }>): string[] {
  const out: string[] = [];
  for (const r of rules) {
    const names = r.resourceNames ? `[${r.resourceNames.join(',')}]` : '';
    for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) out.push(`${g}/${res}${names}:${v}`);
  }
  return out.sort();
}

test('helm lint passes with default and non-default values; the schema and the template checks refuse bad values', async () => {
  for (const args of [[], ['-f', customValues]]) {
    const r = await run(helm, ['lint', '--strict', CHART, '--namespace', NAMESPACE, ...args]);
    assert.equal(r.code, 0, `helm lint ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
  const dup = join(tmp, 'duplicate-trust-domains.yaml');
  writeFileSync(dup, dump({ trustDomains: [
    { name: 'default', trustDomain: 'a.example', ca: { selfSigned: {} } },
    { name: 'default', trustDomain: 'b.example', ca: { selfSigned: {} } },
  ] }));
  const bothCAs = join(tmp, 'both-cas.yaml');
  writeFileSync(bothCAs, dump({ trustDomains: [{ name: 'default', trustDomain: 'cluster.local', ca: { selfSigned: {}, secretRef: { namespace: 'certs', name: 'agents-ca' } } }] }));
  const spiffeURL = join(tmp, 'spiffe-url.yaml');
  writeFileSync(spiffeURL, dump({ trustDomains: [{ name: 'default', trustDomain: 'spiffe://cluster.local', ca: { selfSigned: {} } }] }));
  const refused: Array<[string[], RegExp]> = [
    [['--set', 'webhook.failurePolicy=Sometimes'], /'\/webhook\/failurePolicy': value must be one of 'Fail', 'Ignore'/],
    [['--set', 'webhook.timeoutSeconds=31'], /'\/webhook\/timeoutSeconds'/],
    [['--set', 'replicas=2', '--set', 'leaderElection.enabled=false'], /two operators would reconcile/],
    [['--set', 'logFormat=pretty'], /'\/logFormat': value must be 'json'/],
    [['--set', 'minDuration=10 minutes'], /'\/minDuration': '10 minutes' does not match pattern/],
    [['--set', 'imageTag=1.0'], /additional properties 'imageTag' not allowed/],
    [['-f', bothCAs], /'\/trustDomains\/0\/ca': 'oneOf' failed/],
    [['-f', spiffeURL], /'\/trustDomains\/0\/trustDomain': 'spiffe:\/\/cluster.local' does not match/],
    [['--set', 'podDisruptionBudget.minAvailable=1'], /either minAvailable or maxUnavailable/],
    [['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.service.enabled=false'], /needs metrics.service.enabled/],
    [['-f', dup], /"default" appears twice/],
    [['--set', 'proxy.resources.requests.cpu=1'], /'\/proxy\/resources\/requests\/cpu': got number, want string/],
    [['--set', 'proxy.resources.claims[0].name=x'], /additional properties 'claims' not allowed/],
    [['--set', 'proxy.image.pullPolicy=Sometimes'], /'\/proxy\/image\/pullPolicy': value must be one of/],
    [['--set', 'proxy.metricsPort=15001'], /'\/proxy\/metricsPort'/],
  ];
  for (const [args, message] of refused) {
    const r = await template(args);
    assert.notEqual(r.code, 0, `helm template ${args.join(' ')} should fail`);
    assert.match(r.stderr, message, `helm template ${args.join(' ')}: ${r.stderr}`);
  }
  // A single replica may run without leader election.
  const single = await template(['--set', 'replicas=1', '--set', 'leaderElection.enabled=false']);
  assert.equal(single.code, 0, single.stderr);
  assert.doesNotMatch(single.stdout, /--leader-elect/);
});

test('default values render the operator with its flags, a hardened pod and exactly the RBAC it needs', async () => {
  const { objects } = await render();
  assert.deepEqual(objects.map((o) => o.kind).sort(), [
    'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding', 'MutatingWebhookConfiguration', 'PodDisruptionBudget',
    'Role', 'RoleBinding', 'Service', 'Service', 'ServiceAccount', 'TrustDomain', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'ValidatingWebhookConfiguration',
  ]);
  for (const o of objects) {
    if (CLUSTER_SCOPED.has(o.kind)) assert.equal(o.metadata.namespace, undefined, `${o.kind} ${o.metadata.name} is cluster-scoped`);
    else assert.equal(o.metadata.namespace, NAMESPACE, `${o.kind} ${o.metadata.name} is in the release namespace`);
    assert.equal(o.metadata.labels?.['app.kubernetes.io/instance'], RELEASE);
  }

  const chart = load(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string };
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(chart.appVersion, pkg.version, 'Chart.yaml appVersion is the operator version in package.json');

  const dep = one(objects, 'Deployment', RELEASE);
  assert.equal(dep.spec.replicas, 2);
  const pod = dep.spec.template.spec;
  assert.equal(pod.serviceAccountName, RELEASE);
  const c = pod.containers[0];
  assert.equal(c.image, `agent-identity-operator:${pkg.version}`, 'the tag defaults to the appVersion');
  assert.equal(c.imagePullPolicy, 'IfNotPresent');
  assert.deepEqual(c.env.find((e: Loose) => e.name === 'POD_NAMESPACE').valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } });
  const args: string[] = c.args;
  for (const a of ['--namespace=$(POD_NAMESPACE)', '--http-port=8080', '--webhook-port=9443', '--log-level=info', '--log-format=json',
    '--min-duration=10m', '--ca-duration=87600h', '--leader-elect']) assert.ok(args.includes(a), `args include ${a}: ${args.join(' ')}`);
  const port = (name: string) => c.ports.find((p: Loose) => p.name === name).containerPort;
  assert.equal(port('http'), 8080);
  assert.equal(port('webhook'), 9443);
  assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'http' });
  assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'http' });
  assert.deepEqual(c.securityContext, {
    runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
  });
  assert.equal(pod.securityContext.runAsUser, 65532);
  assert.equal(pod.securityContext.runAsNonRoot, true);

  // The flags are the operator's own: the ones it parses today yield the values
  // the chart meant. --leader-elect and --webhook-port belong to work in
  // progress (leader election, the webhook); until src/config.ts knows them
  // they are the only flags allowed to be unknown.
  const PENDING = new Set<string>();
  const resolved = args.map((a) => a.replace('$(POD_NAMESPACE)', NAMESPACE));
  const known = resolved.filter((a) => {
    try { loadConfig([a], {}); return true; } catch (e) {
      assert.ok(PENDING.has(a.split('=')[0]!), `the operator refuses the chart's flag ${a}: ${(e as Error).message}`);
      return false;
    }
  });
  const cfg = loadConfig(known, {});
  assert.equal(cfg.namespace, NAMESPACE);
  assert.equal(cfg.httpPort, 8080);
  assert.equal(cfg.minDurationMs, 10 * 60_000);
  // The proxy sidecar is the operator's own image unless proxy.image says otherwise.
  assert.deepEqual(cfg.proxy, { image: `agent-identity-operator:${pkg.version}`, imagePullPolicy: 'IfNotPresent', resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } } });
  const own = await render(['--set', 'proxy.image.repository=registry.example/proxy', '--set', 'proxy.image.tag=9.9', '--set', 'proxy.metricsPort=15020']);
  const ownArgs: string[] = one(own.objects, 'Deployment', RELEASE).spec.template.spec.containers[0].args;
  assert.ok(ownArgs.includes('--proxy-image=registry.example/proxy:9.9'), ownArgs.join(' '));
  // proxy.metricsPort: off by default (no flag, cfg.proxy above has no metricsPort); set, the operator reads it.
  assert.equal(loadConfig(ownArgs.filter((a) => a.startsWith('--proxy-')), {}).proxy!.metricsPort, 15020);
  assert.equal(cfg.caDurationMs, 87600 * 3600_000);
  assert.equal(cfg.logLevel, 'info');
  assert.equal(cfg.logFormat, 'json');

  const cr = one(objects, 'ClusterRole', RELEASE);
  assert.deepEqual(grants(cr.rules), grants(EXPECTED_CLUSTER_RULES), 'the ClusterRole grants exactly the expected permissions');
  const role = one(objects, 'Role');
  assert.deepEqual(grants(role.rules), grants([{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }]));
  for (const [kind, roleKind, roleName] of [['ClusterRoleBinding', 'ClusterRole', cr.metadata.name], ['RoleBinding', 'Role', role.metadata.name]] as const) {
    const b = one(objects, kind);
    assert.deepEqual(b.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: roleName });
    assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: RELEASE, namespace: NAMESPACE }]);
  }

  const selector = dep.spec.selector.matchLabels;
  const webhook = one(objects, 'Service', `${RELEASE}-webhook`);
  assert.deepEqual(webhook.spec.ports, [{ name: 'https', port: 443, targetPort: 'webhook', protocol: 'TCP' }]);
  assert.deepEqual(webhook.spec.selector, selector);
  const metrics = one(objects, 'Service', `${RELEASE}-metrics`);
  assert.deepEqual(metrics.spec.ports, [{ name: 'metrics', port: 8080, targetPort: 'http', protocol: 'TCP' }]);
  assert.deepEqual(metrics.spec.selector, selector);
  for (const [k, v] of Object.entries(selector)) assert.equal(dep.spec.template.metadata.labels[k], v, 'the pods carry the selector labels');
  const pdb = one(objects, 'PodDisruptionBudget');
  assert.equal(pdb.spec.maxUnavailable, 1);
  assert.deepEqual(pdb.spec.selector.matchLabels, selector);

  const td = one(objects, 'TrustDomain', 'default');
  assert.deepEqual(td.spec, { trustDomain: 'cluster.local', ca: { selfSigned: { keyAlgorithm: 'ECDSA' } }, spiffeIDTemplate: 'ns/{namespace}/agent/{name}' });

  const dash = one(objects, 'ConfigMap', `${RELEASE}-dashboard`);
  assert.equal(dash.metadata.labels.grafana_dashboard, '1');
  const dashboard = JSON.parse(dash.data['agent-identity-operator.json']);
  assert.equal(dashboard.uid, 'agent-identity-operator');
  assert.ok(dashboard.panels.length > 10);
});

test('the revoke-finalizer MutatingAdmissionPolicy renders only where the API server serves it', async () => {
  // helm template's own capabilities (Kubernetes 1.37 without MutatingAdmissionPolicy), and an
  // explicitly older cluster: the chart installs there, without the policy.
  for (const capabilities of [[], ['--kube-version', '1.35.0']]) {
    const { objects } = await render([], capabilities);
    assert.deepEqual(objects.filter((o) => o.kind.startsWith('MutatingAdmissionPolic')), [], `no MutatingAdmissionPolicy with ${capabilities.join(' ') || 'the default capabilities'}`);
    one(objects, 'ValidatingAdmissionPolicy', 'agentidentity-minimum-duration');
  }
  const { objects } = await render();
  const policy = one(objects, 'MutatingAdmissionPolicy', 'agentidentity-revoke-finalizer');
  assert.equal(policy.spec.failurePolicy, 'Ignore', 'an optimisation: the operator adds the finalizer when the policy did not');
  assert.equal(policy.spec.reinvocationPolicy, 'Never');
  assert.deepEqual(policy.spec.matchConstraints.resourceRules, [{ apiGroups: ['agentidentity.dev'], apiVersions: ['*'], operations: ['CREATE'], resources: ['agentidentities'] }]);
  assert.deepEqual(policy.spec.mutations.map((m: Loose) => m.patchType), ['JSONPatch']);
  assert.equal(one(objects, 'MutatingAdmissionPolicyBinding', 'agentidentity-revoke-finalizer').spec.policyName, 'agentidentity-revoke-finalizer');
});

/** Metric names a PromQL text refers to, mapped to the name a registry declares (histogram series → the histogram). */
function metricNames(promql: string): string[] {
  return [...promql.matchAll(/\bagentidentity_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));
}

test('the dashboard and the alerts use only metrics the operator or the identity proxy exports', async () => {
  const m = new Metrics({ defaultMetrics: true });
  const exported = new Set([...await m.registry.getMetricsAsJSON(), ...await new DecisionMetrics().registry.getMetricsAsJSON()].map((x) => x.name));
  const metricsDoc = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');
  const dashboard = JSON.parse(readFileSync(join(CHART, 'files', 'dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }>; templating: { list: Array<{ definition?: string }> } };
  const exprs = [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `dashboard panel "${p.title}"`, expr: t.expr }))),
    ...dashboard.templating.list.filter((v) => v.definition).map((v) => ({ where: 'dashboard variable', expr: v.definition! })),
  ];
  const rules = load(readFileSync(join(CHART, 'files', 'alerts.yaml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  exprs.push(...rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))));
  const used = new Set<string>();
  for (const { where, expr } of exprs) {
    const names = metricNames(expr);
    assert.ok(names.length > 0, `${where} queries an operator metric: ${expr}`);
    for (const n of names) {
      assert.ok(exported.has(n), `${where} uses ${n}, which neither the operator nor the proxy exports`);
      used.add(n);
    }
  }
  // Every operator metric documented in docs/configuration.md appears on the dashboard.
  const documented = [...metricsDoc.matchAll(/^\| `(agentidentity_[a-z0-9_]+)` \|/gm)].map((x) => x[1]!);
  assert.ok(documented.length >= 10, 'docs/configuration.md lists the metrics');
  for (const n of documented) assert.ok(used.has(n), `docs/configuration.md documents ${n}: show it on the dashboard (helm/agent-identity-operator/files/dashboard.json)`);
});

test('non-default values: secretRef CA, 3 replicas, ServiceMonitor and PrometheusRule', async () => {
  const { objects } = await render(['-f', customValues]);
  const dep = one(objects, 'Deployment');
  assert.equal(dep.spec.replicas, 3);
  const pod = dep.spec.template.spec;
  const c = pod.containers[0];
  assert.equal(c.image, `${CUSTOM_VALUES.image.repository}@${CUSTOM_VALUES.image.digest}`);
  assert.equal(c.imagePullPolicy, 'Always');
  for (const a of ['--http-port=9090', '--webhook-port=10443', '--log-level=debug', '--min-duration=30m', '--ca-duration=43800h', '--leader-elect', '--http-host=0.0.0.0']) {
    assert.ok(c.args.includes(a), `args include ${a}`);
  }
  assert.equal(pod.priorityClassName, 'system-cluster-critical');
  assert.deepEqual(pod.nodeSelector, CUSTOM_VALUES.nodeSelector);
  assert.deepEqual(pod.tolerations, CUSTOM_VALUES.tolerations);
  assert.deepEqual(pod.affinity, CUSTOM_VALUES.affinity);
  assert.deepEqual(pod.imagePullSecrets, [{ name: 'regcred' }]);
  assert.equal(one(objects, 'PodDisruptionBudget').spec.minAvailable, 2);
  assert.equal(one(objects, 'PodDisruptionBudget').spec.maxUnavailable, undefined);

  assert.deepEqual(one(objects, 'TrustDomain', 'partner').spec, {
    trustDomain: 'partner.example', ca: { secretRef: { namespace: NAMESPACE, name: 'partner-ca' } }, spiffeIDTemplate: 'ns/{namespace}/sa/{serviceAccount}',
  });
  assert.deepEqual(one(objects, 'TrustDomain', 'default').spec.ca, { selfSigned: { keyAlgorithm: 'Ed25519' } });

  // The ServiceMonitor scrapes the metrics Service by its labels and port name.
  const svc = one(objects, 'Service', `${RELEASE}-metrics`);
  assert.equal(svc.spec.ports[0].port, 9090);
  const sm = one(objects, 'ServiceMonitor');
  assert.equal(sm.metadata.labels.release, 'prometheus');
  for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) assert.equal(svc.metadata.labels[k], v, `the metrics Service has ${k}=${String(v)}`);
  assert.ok(objects.filter((o) => o.kind === 'Service' && o !== svc).every((o) => o.metadata.labels?.['app.kubernetes.io/component'] !== 'metrics'), 'only the metrics Service matches');
  assert.deepEqual(sm.spec.endpoints, [{ port: svc.spec.ports[0].name, path: '/metrics', interval: '1m', scrapeTimeout: '20s' }]);
  assert.deepEqual(sm.spec.namespaceSelector, { matchNames: [NAMESPACE] });

  const pr = one(objects, 'PrometheusRule');
  assert.equal(pr.metadata.labels.release, 'prometheus');
  const alerts = new Map<string, Loose>(pr.spec.groups.flatMap((g: Loose) => g.rules).map((r: Loose) => [r.alert, r]));
  assert.deepEqual([...alerts.keys()].sort(), ['AgentIdentityCAExpiringSoon', 'AgentIdentityIssuanceErrors', 'AgentIdentityNotReady', 'AgentIdentityRenewalOverdue']);
  for (const r of alerts.values()) assert.equal(r.labels.team, 'platform', `${r.alert} carries alertLabels`);
  assert.match(alerts.get('AgentIdentityNotReady').expr, /agentidentity_certificate_ready_status\{condition="False"\}/);
  assert.equal(alerts.get('AgentIdentityNotReady').for, '10m');
  assert.match(alerts.get('AgentIdentityRenewalOverdue').expr, /^time\(\) > .*agentidentity_certificate_renewal_timestamp_seconds.* \+ 300$/);
  assert.match(alerts.get('AgentIdentityCAExpiringSoon').expr, /agentidentity_ca_expiration_timestamp_seconds.* - time\(\) < 30 \* 86400$/);
  assert.match(alerts.get('AgentIdentityIssuanceErrors').expr, /rate\(agentidentity_issuance_total\{result="error"\}\[15m\]\).* > 0$/);
  // The annotations keep Prometheus' own templating ({{ $labels.x }}), untouched by Helm.
  assert.match(alerts.get('AgentIdentityNotReady').annotations.summary, /\{\{ \$labels\.namespace \}\}\/\{\{ \$labels\.name \}\}/);
});

test('every rendered object, and the kustomize base, is accepted by the API server (dry-run=server)', async () => {
  const kubectl = env.kubectl;
  const crds = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(CHART, 'crds')]);
  assert.equal(crds.code, 0, crds.stderr);
  // On an existing cluster (USE_EXISTING_CLUSTER) that already runs
  // prometheus-operator, keep its CRDs rather than replace them with ours.
  for (const crd of ['servicemonitors', 'prometheusrules']) {
    if ((await kubectl(['get', 'crd', `${crd}.monitoring.coreos.com`])).code === 0) continue;
    const r = await kubectl(['apply', '--server-side', '-f', join(monitoringCRDs, `monitoring.coreos.com_${crd}.yaml`)]);
    assert.equal(r.code, 0, r.stderr);
  }
  await waitEstablished(kubectl, ['servicemonitors.monitoring.coreos.com', 'prometheusrules.monitoring.coreos.com', 'trustdomains.agentidentity.dev']);
  await ensureNamespace(env.kc, NAMESPACE);

  const check = async (what: string, manifest: string, expectedKinds: string[]) => {
    // --validate=strict: an unknown or misplaced field is an error, not a warning.
    const r = await kubectl(['apply', '--server-side', '--field-manager=chart-test', '--dry-run=server', '--validate=strict', '-o', 'name', '-f', '-'], manifest);
    assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    assert.equal(r.stderr.trim(), '', `${what}: no warnings`);
    const kinds = r.stdout.trim().split('\n').map((l) => l.split('/')[0]!.split('.')[0]!).sort();
    assert.deepEqual(kinds, expectedKinds.map((k) => k.toLowerCase()).sort(), `${what}: every object accepted`);
  };
  const defaults = await render();
  await check('default values', defaults.text, defaults.objects.map((o) => o.kind));
  const custom = await render(['-f', customValues]);
  assert.ok(custom.objects.some((o) => o.kind === 'ServiceMonitor') && custom.objects.some((o) => o.kind === 'PrometheusRule'));
  await check('non-default values', custom.text, custom.objects.map((o) => o.kind));

  const kustomized = await kubectl(['kustomize', join(ROOT, 'deploy')]);
  assert.equal(kustomized.code, 0, kustomized.stderr);
  const base = (loadAll(kustomized.stdout) as Obj[]).filter(Boolean);
  assert.deepEqual(base.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata.name).sort(), ['agentidentities.agentidentity.dev', 'clusterfederatedtrustdomains.agentidentity.dev', 'trustdomains.agentidentity.dev']);
  await check('kubectl kustomize deploy/', kustomized.stdout, base.map((o) => o.kind));
  // deploy/ is the default render plus the Namespace and the CRDs, and has no
  // field that the operator (or the API server) rewrites at runtime.
  assert.deepEqual(base.filter((o) => o.kind !== 'Namespace' && o.kind !== 'CustomResourceDefinition').map((o) => `${o.kind}/${o.metadata.name}`).sort(),
    defaults.objects.map((o) => `${o.kind}/${o.metadata.name}`).sort());
  for (const o of base.filter((x) => x.kind !== 'CustomResourceDefinition')) {
    const where = `${o.kind}/${o.metadata.name}`;
    assert.equal(o.status, undefined, `${where} has no status`);
    for (const f of ['resourceVersion', 'uid', 'creationTimestamp', 'generation', 'managedFields']) assert.equal((o.metadata as Loose)[f], undefined, `${where} has no metadata.${f}`);
    assert.doesNotMatch(JSON.stringify(o), /caBundle/, `${where} has no webhook caBundle`);
  }
  const ns = one(base, 'Namespace');
  assert.equal(ns.metadata.name, NAMESPACE);
  assert.equal(ns.metadata.labels['pod-security.kubernetes.io/enforce'], 'restricted');
});

test('helm install, upgrade and uninstall work against the API server', async () => {
  const release = 'helm-check';
  const ns = 'helm-check';
  const values = join(tmp, 'helm-check.yaml');
  writeFileSync(values, dump({ trustDomains: [{ name: 'helm-check', trustDomain: 'helm-check.example', ca: { selfSigned: { keyAlgorithm: 'ECDSA' } } }] }));
  const h = helmHere;
  const install = await h('install', release, CHART, '--namespace', ns, '--create-namespace', '-f', values);
  assert.equal(install.code, 0, install.stderr);
  const dep = await env.kubectl(['get', 'deployment', '-n', ns, `${release}-agent-identity-operator`, '-o', 'jsonpath={.spec.replicas}']);
  assert.equal(dep.stdout, '2');
  const td = await env.kubectl(['get', 'trustdomain', 'helm-check', '-o', 'jsonpath={.metadata.annotations.meta\\.helm\\.sh/release-name}']);
  assert.equal(td.stdout, release, 'the TrustDomain belongs to the release');

  const upgrade = await h('upgrade', release, CHART, '--namespace', ns, '-f', values, '--set', 'replicas=3');
  assert.equal(upgrade.code, 0, upgrade.stderr);
  const scaled = await env.kubectl(['get', 'deployment', '-n', ns, `${release}-agent-identity-operator`, '-o', 'jsonpath={.spec.replicas}']);
  assert.equal(scaled.stdout, '3');

  const uninstall = await h('uninstall', release, '--namespace', ns, '--wait', '--timeout', '60s');
  assert.equal(uninstall.code, 0, uninstall.stderr);
  const gone = await env.kubectl(['get', 'trustdomain', 'helm-check', '--ignore-not-found', '-o', 'name']);
  assert.equal(gone.stdout.trim(), '', 'uninstall removes the TrustDomains it created');
  const crds = await env.kubectl(['get', 'crd', 'agentidentities.agentidentity.dev', 'trustdomains.agentidentity.dev', '-o', 'name']);
  assert.equal(crds.code, 0, 'uninstall keeps the CRDs');
  const roles = await env.kubectl(['get', 'clusterrole', `${release}-agent-identity-operator`, '--ignore-not-found', '-o', 'name']);
  assert.equal(roles.stdout.trim(), '');
  await env.kubectl(['delete', 'namespace', ns, '--wait=false']);
});

// The chart's cluster-scoped objects with fixed names, which `make install` also creates.
const SHARED = [
  ['trustdomain', 'default'], ['validatingadmissionpolicy', 'agentidentity-minimum-duration'], ['validatingadmissionpolicybinding', 'agentidentity-minimum-duration'],
  ['mutatingadmissionpolicy', 'agentidentity-revoke-finalizer'], ['mutatingadmissionpolicybinding', 'agentidentity-revoke-finalizer'],
] as const;
const minimumDuration = async () => (await env.kubectl(['get', 'validatingadmissionpolicy', 'agentidentity-minimum-duration', '-o', 'jsonpath={.spec.validations[0].expression}'])).stdout;

test('helm install onto a cluster whose CRDs were applied with kubectl apply --server-side -f crds/ works and prints the NOTES', async () => {
  const release = 'crds-first';
  const crds = await env.kubectl(['apply', '--server-side', '-f', join(ROOT, 'crds')]);
  assert.equal(crds.code, 0, crds.stderr);
  const install = await helmHere('install', release, CHART, '--namespace', release, '--create-namespace');
  assert.equal(install.code, 0, install.stderr);
  for (const [kind, name] of SHARED) assert.equal(await helmOwner(kind, name), `${release}/${release}`, `the release owns ${kind} ${name}`);

  // The NOTES: what was installed for this release, and how to check it.
  const notes = install.stdout.slice(install.stdout.indexOf('NOTES:'));
  assert.ok(notes.startsWith('NOTES:'), `helm install prints NOTES:\n${install.stdout}`);
  for (const line of [
    `installed as release ${release} in namespace ${release}`,
    `Deployment ${release}-agent-identity-operator (2 replicas, leader election)`,
    `the admission webhooks ${release}-agent-identity-operator`,
    'AgentIdentity durations below 10m are refused',
    '- TrustDomains: default (cluster.local)',
    `kubectl -n ${release} rollout status deployment/${release}-agent-identity-operator`,
    'kubectl get trustdomains',
    `agent-identity check --operator-namespace ${release}`,
    'agentidentity.dev/agent',
    'docs/install.md',
  ]) assert.ok(notes.includes(line), `NOTES say "${line}":\n${notes}`);

  const uninstall = await helmHere('uninstall', release, '--namespace', release, '--wait', '--timeout', '60s');
  assert.equal(uninstall.code, 0, uninstall.stderr);
  for (const [kind, name] of SHARED) assert.equal(await helmOwner(kind, name), '', `uninstall removes ${kind} ${name}`);
  await env.kubectl(['delete', 'namespace', release, '--wait=false']);
});

test('the NOTES render for every values file the chart accepts, and say so when no TrustDomain is created', async () => {
  const none = join(tmp, 'no-trust-domains.yaml');
  writeFileSync(none, dump({ trustDomains: [], replicas: 1, leaderElection: { enabled: false }, dashboard: { enabled: false }, metrics: { service: { enabled: false } } }));
  for (const [args, expected] of [
    [['-f', customValues], /- TrustDomains: default \(cluster\.local\), partner \(partner\.example\)\n- Service \S+-metrics \(\/metrics on port 9090\), a ServiceMonitor, a PrometheusRule with the alerts\n/],
    [['-f', none], /Deployment \S+ \(1 replica\), [^\n]*\n[^\n]*\n[^\n]*\n- no TrustDomain \(trustDomains: \[\]\)[^\n]*\n- the CRDs/],
  ] as const) {
    // --dry-run=client renders everything helm install would, NOTES included, without a cluster.
    const r = await run(helm, ['install', RELEASE, CHART, '--namespace', NAMESPACE, '--dry-run=client', ...args]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, expected);
    assert.doesNotMatch(r.stdout.slice(r.stdout.indexOf('NOTES:')), /<no value>|%!/, 'no unfilled placeholder in the NOTES');
  }
});

test('make install, then helm install: the release adopts the admission policy and the TrustDomain; make install again leaves them to the release', async () => {
  const kubectlBin = env.controlPlane?.bins.kubectl ?? resolveBinaries().kubectl;
  const makeInstall = () => run('bash', [join(ROOT, 'scripts', 'install.sh')], { env: { KUBECONFIG: env.kubeconfigPath, KUBECTL: kubectlBin } });
  const first = await makeInstall();
  assert.equal(first.code, 0, first.stderr);
  for (const [kind, name] of SHARED) assert.equal(await helmOwner(kind, name), `${RELEASE}/${NAMESPACE}`, `make install marks ${kind} ${name} for adoption by the documented release`);
  const td = JSON.parse((await env.kubectl(['get', 'trustdomain', 'default', '-o', 'json'])).stdout) as Loose;
  assert.equal(td.metadata.labels['app.kubernetes.io/managed-by'], 'Helm');
  assert.match(await minimumDuration(), /duration\('10m'\)/);
  assert.equal((await env.kubectl(['get', 'deployment', '-n', NAMESPACE, RELEASE, '--ignore-not-found', '-o', 'name'])).stdout.trim(), '', 'make install runs nothing in the cluster');

  // A value other than make install's default: Helm takes over the fields make install wrote, without a conflict.
  const install = await helmHere('install', RELEASE, CHART, '--namespace', NAMESPACE, '--set', 'minDuration=30m');
  assert.equal(install.code, 0, install.stderr);
  const manifest = await helmHere('get', 'manifest', RELEASE, '--namespace', NAMESPACE);
  const owned = (loadAll(manifest.stdout) as Array<Obj | null>).filter((o): o is Obj => !!o).map((o) => `${o.kind.toLowerCase()}/${o.metadata.name}`);
  for (const [kind, name] of SHARED) {
    assert.ok(owned.includes(`${kind}/${name}`), `the release's manifest holds ${kind} ${name}`);
    assert.equal(await helmOwner(kind, name), `${RELEASE}/${NAMESPACE}`);
  }
  assert.match(await minimumDuration(), /duration\('30m'\)/, "the release's value replaced make install's");

  const again = await makeInstall();
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`deploy/admissionpolicy\\.yaml: left alone, the Helm release ${RELEASE} in namespace ${NAMESPACE} owns it`));
  assert.match(await minimumDuration(), /duration\('30m'\)/, 'make install does not undo the release');

  const uninstall = await helmHere('uninstall', RELEASE, '--namespace', NAMESPACE, '--wait', '--timeout', '60s');
  assert.equal(uninstall.code, 0, uninstall.stderr);
  for (const [kind, name] of SHARED) assert.equal(await helmOwner(kind, name), '', `uninstall removes ${kind} ${name}: the release owned it`);
});

test('on a cluster without MutatingAdmissionPolicy (Kubernetes before 1.36), make install and helm install work and leave the revoke-finalizer policy out', async () => {
  const older = await startControlPlane({ dir: join(tmp, 'older-cp'), apiServerArgs: [
    '--runtime-config=admissionregistration.k8s.io/v1/mutatingadmissionpolicies=false,admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings=false',
    '--disable-admission-plugins=MutatingAdmissionPolicy',
  ] });
  try {
    const kubectl = (args: string[]) => runKubectl(older.bins.kubectl, older.kubeconfigPath, args);
    const resources = await kubectl(['api-resources', '--api-group=admissionregistration.k8s.io', '-o', 'name']);
    assert.doesNotMatch(resources.stdout, /^mutatingadmissionpolicies\./m, 'this control plane does not serve MutatingAdmissionPolicy');
    const makeInstall = await run('bash', [join(ROOT, 'scripts', 'install.sh')], { env: { KUBECONFIG: older.kubeconfigPath, KUBECTL: older.bins.kubectl } });
    assert.equal(makeInstall.code, 0, `${makeInstall.stdout}\n${makeInstall.stderr}`);
    assert.match(makeInstall.stdout, /the operator adds the revoke finalizer itself/);
    const minimum = await kubectl(['get', 'validatingadmissionpolicy,validatingadmissionpolicybinding', '-o', 'name']);
    assert.deepEqual(minimum.stdout.trim().split('\n').sort(), ['validatingadmissionpolicy.admissionregistration.k8s.io/agentidentity-minimum-duration', 'validatingadmissionpolicybinding.admissionregistration.k8s.io/agentidentity-minimum-duration']);
    const install = await run(helm, ['install', RELEASE, CHART, '--namespace', NAMESPACE, '--kubeconfig', older.kubeconfigPath]);
    assert.equal(install.code, 0, install.stderr);
    const manifest = await run(helm, ['get', 'manifest', RELEASE, '--namespace', NAMESPACE, '--kubeconfig', older.kubeconfigPath]);
    const kinds = (loadAll(manifest.stdout) as Array<Obj | null>).filter((o): o is Obj => !!o).map((o) => o.kind);
    assert.ok(kinds.includes('ValidatingAdmissionPolicy'), kinds.join(', '));
    assert.ok(!kinds.some((k) => k.startsWith('MutatingAdmissionPolic')), `helm renders no MutatingAdmissionPolicy where the API is not served: ${kinds.join(', ')}`);
  } finally {
    await older.stop();
  }
});

test('on a fresh cluster one kubectl apply --server-side -k deploy/ applies all but the TrustDomain, and a second one the rest (as docs/install.md says)', async () => {
  // A control plane of its own: this one must not have the CRDs yet.
  const fresh = await startControlPlane({ dir: join(tmp, 'fresh-cp') });
  try {
    const kubectl = (args: string[]) => runKubectl(fresh.bins.kubectl, fresh.kubeconfigPath, args);
    assert.equal((await kubectl(['get', 'crd', 'trustdomains.agentidentity.dev', '--ignore-not-found', '-o', 'name'])).stdout.trim(), '', 'no CRDs yet');
    const expected = (loadAll((await kubectl(['kustomize', join(ROOT, 'deploy')])).stdout) as Obj[]).filter(Boolean);
    const apply = () => kubectl(['apply', '--server-side', '-k', join(ROOT, 'deploy')]);
    const once = await apply();
    // Whether kubectl already knows the TrustDomain kind is a race with the CRD becoming established: on a quiet
    // machine the first apply may take everything. Either way nothing but the TrustDomain may be missing.
    if (once.code !== 0) {
      assert.equal(once.code, 1, `${once.stdout}\n${once.stderr}`);
      assert.match(once.stderr, /no matches for kind "TrustDomain" in version "agentidentity\.dev\/v1alpha1"/);
      assert.equal(once.stdout.trim().split('\n').length, expected.length - 1, `everything but the TrustDomain applied:\n${once.stdout}`);
    } else {
      assert.equal(once.stdout.trim().split('\n').length, expected.length, `everything applied at once:\n${once.stdout}`);
    }
    const twice = await apply();
    assert.equal(twice.code, 0, `${twice.stdout}\n${twice.stderr}`);
    assert.equal(twice.stdout.trim().split('\n').length, expected.length, twice.stdout);
    const td = await kubectl(['get', 'trustdomain', 'default', '-o', 'jsonpath={.spec.trustDomain}']);
    assert.equal(td.stdout, 'cluster.local');
  } finally {
    await fresh.stop();
  }
});

test('scripts/chart-sync.sh --check passes, and fails with a diff when the chart CRDs or deploy/ drift', async () => {
  const ok = await run('bash', [join(ROOT, 'scripts', 'chart-sync.sh'), '--check']);
  assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
  for (const f of ['agentidentities.agentidentity.dev.yaml', 'trustdomains.agentidentity.dev.yaml']) {
    assert.equal(readFileSync(join(CHART, 'crds', f), 'utf8'), readFileSync(join(ROOT, 'crds', f), 'utf8'), `chart crds/${f} is an exact copy`);
  }

  // A copy of the repository's relevant parts, where drift is safe to make.
  const copy = join(tmp, 'repo');
  for (const p of ['crds', 'helm', 'deploy']) cpSync(join(ROOT, p), join(copy, p), { recursive: true });
  mkdirSync(join(copy, 'scripts'));
  for (const s of ['chart-sync.sh', 'helm.sh', 'go-tool.sh']) cpSync(join(ROOT, 'scripts', s), join(copy, 'scripts', s));
  const sync = (args: string[]) => run('bash', [join(copy, 'scripts', 'chart-sync.sh'), ...args], { cwd: copy, env: { HELM: helm } });

  appendFileSync(join(copy, 'crds', 'trustdomains.agentidentity.dev.yaml'), '# a new line in the source of truth\n');
  const drifted = await sync(['--check']);
  assert.equal(drifted.code, 1);
  assert.match(drifted.stdout, /^\+# a new line in the source of truth$/m);
  assert.match(drifted.stdout, /helm\/agent-identity-operator\/crds\/trustdomains\.agentidentity\.dev\.yaml/);
  assert.match(drifted.stdout, /deploy\/crds\/trustdomains\.agentidentity\.dev\.yaml/);
  assert.match(drifted.stderr, /out of date/);

  const synced = await sync([]);
  assert.equal(synced.code, 0, synced.stderr);
  assert.equal((await sync(['--check'])).code, 0, 'after a sync the check passes');

  // A value change in the chart shows up as drift in deploy/.
  const values = join(copy, 'helm', 'agent-identity-operator', 'values.yaml');
  writeFileSync(values, readFileSync(values, 'utf8').replace(/^replicas: 2$/m, 'replicas: 3'));
  const rendered = await sync(['--check']);
  assert.equal(rendered.code, 1);
  assert.match(rendered.stdout, /^-  replicas: 2\n\+  replicas: 3$/m);
});

test('promtool accepts the alert rules, and each alert fires exactly when it should', async () => {
  const { objects } = await render(['-f', customValues]);
  const pr = one(objects, 'PrometheusRule');
  const dir = join(tmp, 'promtool');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'rules.yaml'), dump(pr.spec));
  const checked = await run(promtool, ['check', 'rules', join(dir, 'rules.yaml')]);
  assert.equal(checked.code, 0, checked.stdout + checked.stderr);
  assert.match(checked.stdout, /SUCCESS: 4 rules found/);

  // Expected annotations: the rule's text with {{ $labels.x }} filled in, as Prometheus renders it.
  const rules = new Map<string, Loose>(pr.spec.groups.flatMap((g: Loose) => g.rules).map((r: Loose) => [r.alert, r]));
  const alert = (name: string, labels: Record<string, string>) => {
    const r = rules.get(name);
    const fill = (s: string) => s.replace(/\{\{ \$labels\.([a-z_]+) \}\}/g, (_, k: string) => labels[k] ?? '');
    return {
      exp_labels: { ...r.labels, ...labels },
      exp_annotations: Object.fromEntries(Object.entries(r.annotations as Record<string, string>).map(([k, v]) => [k, fill(v)])),
    };
  };
  const DAY = 86400;
  const tests = {
    rule_files: ['rules.yaml'],
    evaluation_interval: '1m',
    tests: [
      {
        name: 'identity not Ready: fires after 10 minutes of Ready=False, never for a Ready identity',
        interval: '1m',
        input_series: [
          { series: 'agentidentity_certificate_ready_status{namespace="agents",name="planner",condition="False",pod="operator-a"}', values: '1x30' },
          { series: 'agentidentity_certificate_ready_status{namespace="agents",name="planner",condition="True",pod="operator-a"}', values: '0x30' },
          { series: 'agentidentity_certificate_ready_status{namespace="agents",name="auditor",condition="False",pod="operator-a"}', values: '0x30' },
          { series: 'agentidentity_certificate_ready_status{namespace="agents",name="auditor",condition="True",pod="operator-a"}', values: '1x30' },
        ],
        alert_rule_test: [
          { eval_time: '9m', alertname: 'AgentIdentityNotReady', exp_alerts: [] },
          { eval_time: '11m', alertname: 'AgentIdentityNotReady', exp_alerts: [alert('AgentIdentityNotReady', { namespace: 'agents', name: 'planner' })] },
        ],
      },
      {
        name: 'renewal overdue: fires once 5 minutes past renewal + 5 minutes, not for a certificate renewed in time',
        interval: '1m',
        input_series: [
          // due at t=600s; overdue (time() > 900) from t=960s; firing 5 minutes later.
          { series: 'agentidentity_certificate_renewal_timestamp_seconds{namespace="agents",name="planner",pod="operator-a"}', values: '600x40' },
          { series: `agentidentity_certificate_renewal_timestamp_seconds{namespace="agents",name="auditor",pod="operator-a"}`, values: `${30 * DAY}x40` },
        ],
        alert_rule_test: [
          { eval_time: '15m', alertname: 'AgentIdentityRenewalOverdue', exp_alerts: [] },
          { eval_time: '20m', alertname: 'AgentIdentityRenewalOverdue', exp_alerts: [] },
          { eval_time: '22m', alertname: 'AgentIdentityRenewalOverdue', exp_alerts: [alert('AgentIdentityRenewalOverdue', { namespace: 'agents', name: 'planner' })] },
        ],
      },
      {
        name: 'CA expiring: fires for a CA with 29 days left, not for one with 400',
        interval: '1m',
        input_series: [
          { series: 'agentidentity_ca_expiration_timestamp_seconds{trust_domain="default",pod="operator-a"}', values: `${29 * DAY}x90` },
          { series: 'agentidentity_ca_expiration_timestamp_seconds{trust_domain="partner",pod="operator-a"}', values: `${400 * DAY}x90` },
        ],
        alert_rule_test: [
          { eval_time: '30m', alertname: 'AgentIdentityCAExpiringSoon', exp_alerts: [] },
          { eval_time: '61m', alertname: 'AgentIdentityCAExpiringSoon', exp_alerts: [alert('AgentIdentityCAExpiringSoon', { trust_domain: 'default' })] },
        ],
      },
      {
        name: 'issuance errors: fire when errors keep coming, never for successes',
        interval: '1m',
        input_series: [
          { series: 'agentidentity_issuance_total{trust_domain="default",reason="Renewing",result="error",pod="operator-a"}', values: '0+1x40' },
          { series: 'agentidentity_issuance_total{trust_domain="default",reason="Renewing",result="success",pod="operator-a"}', values: '0+5x40' },
          { series: 'agentidentity_issuance_total{trust_domain="partner",reason="SecretDoesNotExist",result="error",pod="operator-a"}', values: '3x40' },
        ],
        alert_rule_test: [
          { eval_time: '10m', alertname: 'AgentIdentityIssuanceErrors', exp_alerts: [] },
          { eval_time: '20m', alertname: 'AgentIdentityIssuanceErrors', exp_alerts: [alert('AgentIdentityIssuanceErrors', { trust_domain: 'default', reason: 'Renewing' })] },
        ],
      },
    ],
  };
  writeFileSync(join(dir, 'tests.yaml'), dump(tests, { lineWidth: -1 }));
  const tested = await run(promtool, ['test', 'rules', join(dir, 'tests.yaml')], { cwd: dir });
  assert.equal(tested.code, 0, tested.stdout + tested.stderr);
  assert.match(tested.stdout, /SUCCESS/);
});

test("the operator, running as the chart's ServiceAccount with only the chart's RBAC, issues an AgentIdentity to Ready", async () => {
  await ensureNamespace(env.kc, NAMESPACE);
  const { objects } = await render();
  const applied = objects.filter((o) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'TrustDomain'].includes(o.kind));
  assert.equal(applied.length, 6);
  const r = await env.kubectl(['apply', '--server-side', '-f', '-'], applied.map((o) => dump(o)).join('---\n'));
  assert.equal(r.code, 0, r.stderr);

  // What the chart's RBAC allows and refuses, as the API server judges it.
  const can = async (...args: string[]) => (await env.kubectl(['auth', 'can-i', `--as=${SA_USER}`, ...args])).stdout.trim();
  // The authorizer sees new RBAC objects through its own watch: wait for it.
  await eventually(async () => (await can('watch', 'secrets', '--all-namespaces')) === 'yes', { what: 'the ClusterRoleBinding in effect' });
  assert.equal(await can('patch', 'agentidentities.agentidentity.dev', '--subresource=status', '-n', 'agents'), 'yes');
  assert.equal(await can('update', 'trustdomains.agentidentity.dev', '--subresource=status'), 'yes');
  assert.equal(await can('create', 'leases.coordination.k8s.io', '-n', NAMESPACE), 'yes');
  assert.equal(await can('create', 'leases.coordination.k8s.io', '-n', 'default'), 'no', 'leases only in the release namespace');
  assert.equal(await can('update', 'agentidentities.agentidentity.dev', '-n', 'agents'), 'no', 'no update of an AgentIdentity, only a metadata patch');
  assert.equal(await can('create', 'agentidentities.agentidentity.dev', '-n', 'agents'), 'no');
  assert.equal(await can('delete', 'trustdomains.agentidentity.dev'), 'no');
  assert.equal(await can('list', 'pods', '--all-namespaces'), 'yes', 'the app-port check (the operator lists only labelled ones)');
  for (const verb of ['get', 'create', 'update', 'patch', 'delete']) assert.equal(await can(verb, 'pods', '-n', 'agents'), 'no', `no ${verb} of pods: read only`);
  assert.equal(await can('create', 'pods', '--subresource=exec', '-n', 'agents'), 'no');
  assert.equal(await can('create', 'clusterrolebindings.rbac.authorization.k8s.io'), 'no');
  assert.equal(await can('delete', 'mutatingwebhookconfigurations.admissionregistration.k8s.io'), 'no');
  assert.equal(await can('update', 'clustertrustbundles.certificates.k8s.io/agentidentity-default'), 'yes');
  assert.equal(await can('update', 'clustertrustbundles.certificates.k8s.io/kube-apiserver-serving'), 'no', 'ClusterTrustBundles of others are out of reach');
  assert.equal(await can('delete', 'clustertrustbundles.certificates.k8s.io/agentidentity-default'), 'no');
  // kubectl auth can-i cannot name a signer (its name holds a slash, and signers are not a served resource): ask the authorizer directly.
  const canSign = async (name: string) => (await env.kc.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
    body: { spec: { user: SA_USER, groups: ['system:serviceaccounts'], resourceAttributes: { group: 'certificates.k8s.io', resource: 'signers', name, verb: 'sign' } } },
  })).status?.allowed === true;
  assert.equal(await canSign('agentidentity.dev/svid'), true);
  assert.equal(await canSign('kubernetes.io/kube-apiserver-client'), false, 'no other signer');
  assert.equal(await can('delete', 'podcertificaterequests.certificates.k8s.io', '-n', 'agents'), 'no');

  // A KubeConfig that holds only a TokenRequest token for the chart's ServiceAccount.
  const sa = one(objects, 'ServiceAccount').metadata.name as string;
  const tr = await api(env.kc).core.createNamespacedServiceAccountToken({ namespace: NAMESPACE, name: sa, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  const cluster = env.kc.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster], users: [{ name: sa, token: tr.status!.token }],
    contexts: [{ name: sa, cluster: cluster.name, user: sa }], currentContext: sa,
  });
  const a = api(kc);
  op = await runOperator(kc, {}, env.kc);

  const ns = await env.namespace('agents');
  await api(env.kc).createIdentity(ns, 'planner');
  await eventually(async () => isReady(await a.getTrustDomain('default')), { timeoutMs: 60_000, what: "the chart's TrustDomain Ready" });
  let last: unknown;
  const ai = await eventually(async () => { const i = await a.getIdentity(ns, 'planner'); last = i.status; return isReady(i) && i; }, { timeoutMs: 60_000, what: 'AgentIdentity Ready' })
    .catch((e: Error) => { throw new Error(`${e.message}; status: ${JSON.stringify(last)}`); });
  assert.equal(ai.status?.spiffeID, `spiffe://cluster.local/ns/${ns}/agent/planner`);
  const secret = await a.getSecret(ns, 'planner-identity');
  assert.match(secretText(secret, 'tls.crt'), /BEGIN CERTIFICATE/);
  // Published under the narrowed rule: created, then read back by name.
  await eventually(async () => {
    const td = await a.getTrustDomain('default');
    return td.status?.conditions?.some((c) => c.type === 'BundlePublished' && c.status === 'True');
  }, { what: 'BundlePublished=True under the chart RBAC' });
  const ctb = await a.custom.getClusterCustomObject({ group: 'certificates.k8s.io', version: 'v1', plural: 'clustertrustbundles', name: 'agentidentity-default' }) as { spec: { trustBundle: string } };
  assert.match(ctb.spec.trustBundle, /BEGIN CERTIFICATE/);
  const ca = await a.core.readNamespacedSecret({ namespace: NAMESPACE, name: 'default-ca' });
  assert.equal(ca.metadata?.namespace, NAMESPACE, 'the self-signed CA Secret lives in the release namespace');
  // A first issuance records no Event (its status says it all); a re-issue does, so events are written under the chart's RBAC.
  await api(env.kc).core.deleteNamespacedSecret({ namespace: ns, name: 'planner-identity' });
  await eventually(async () => {
    const events = await api(env.kc).core.listNamespacedEvent({ namespace: ns });
    return events.items.some((e) => e.involvedObject.name === 'planner' && e.type === 'Normal' && e.reason === 'Issued');
  }, { timeoutMs: 60_000, what: 'the operator recorded the re-issue as an Event' });

  // Nothing was refused along the way: no reconcile failed for want of a permission.
  const errors = (await op.metrics.reconcileErrors.get()).values.filter((v) => v.value > 0).map((v) => String(v.labels.reason));
  assert.deepEqual(errors.filter((reason) => /forbidden|unreadable|unauthori/i.test(reason)), [], `reconcile errors: ${errors.join(', ')}`);
});
