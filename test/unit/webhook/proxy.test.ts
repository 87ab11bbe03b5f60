// spec.proxy: the identity proxy as a native sidecar that alone holds the key,
// the agent's containers with only the proxy environment, a second run over
// the result asking for nothing, and the pods that are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { AgentIdentity, ProxySpec } from '../../../src/api/types.ts';
import { injectIdentity } from '../../../src/webhook/mutate.ts';
import type { Container, Pod } from '../../../src/webhook/pod.ts';
import { AGENT_PROXY_ENV, PROXY_CONTAINER, proxyArgs, type ProxySidecarConfig } from '../../../src/webhook/sidecar.ts';
import { validatePod } from '../../../src/webhook/validate.ts';
import { agentPod, applyPatch, identity, ownedSecret } from './fixtures.ts';

const DIR = '/var/run/agentidentity';
const config: ProxySidecarConfig = { image: 'registry.example/agent-identity-operator:1.2.3', imagePullPolicy: 'IfNotPresent', resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } } };

function proxied(name: string, proxy: ProxySpec = { port: 8443, appPort: 8080 }, more: Partial<AgentIdentity['spec']> = {}): AgentIdentity {
  const i = identity(name);
  return { ...i, spec: { ...i.spec, proxy, ...more } };
}
const planner = proxied('planner');
const inject = (p: Pod, i = planner) => injectIdentity(p, i, { proxy: config });
const injected = (p: Pod, i = planner) => applyPatch(p, inject(p, i).patch);
const envOf = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
const sidecarOf = (p: Pod) => p.spec.initContainers?.find((c) => c.name === PROXY_CONTAINER);

test('the proxy comes first among the initContainers, as a native sidecar with the contract\'s arguments', () => {
  const out = injected(agentPod('planner', { spec: { containers: [{ name: 'app', image: 'a' }], initContainers: [{ name: 'migrate', image: 'm' }] } }));
  assert.deepEqual(out.spec.initContainers!.map((c) => c.name), [PROXY_CONTAINER, 'migrate'], 'first, so the agent\'s own init containers can call out through it');
  const sidecar = sidecarOf(out)!;
  assert.equal(sidecar.restartPolicy, 'Always');
  assert.equal(sidecar.image, config.image);
  assert.equal(sidecar.imagePullPolicy, 'IfNotPresent');
  assert.deepEqual(sidecar.command, ['node', '--max-semi-space-size=1', '/app/dist/cli/main.js']);
  assert.deepEqual(sidecar.args, ['proxy', `--identity-dir=${DIR}`, '--inbound-port=8443', '--app-port=8080', '--mode=http', '--outbound-port=15001']);
  assert.deepEqual(sidecar.ports, [{ name: 'agent-proxy', containerPort: 8443, protocol: 'TCP' }]);
  assert.deepEqual(sidecar.startupProbe, { tcpSocket: { port: 8443 }, periodSeconds: 1, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 60 });
  assert.deepEqual(sidecar.resources, config.resources);
});

test('--proxy-metrics-port: the sidecar serves /metrics on that port, named proxy-metrics; without it, no metrics port', () => {
  const sidecar = sidecarOf(applyPatch(agentPod('planner'), injectIdentity(agentPod('planner'), planner, { proxy: { ...config, metricsPort: 15020 } }).patch))!;
  assert.deepEqual(sidecar.args, ['proxy', `--identity-dir=${DIR}`, '--inbound-port=8443', '--app-port=8080', '--mode=http', '--outbound-port=15001', '--metrics-port=15020']);
  assert.deepEqual(sidecar.ports, [{ name: 'agent-proxy', containerPort: 8443, protocol: 'TCP' }, { name: 'proxy-metrics', containerPort: 15020, protocol: 'TCP' }]);
  assert.ok(!(sidecarOf(injected(agentPod('planner')))!.args as string[]).some((a) => a.startsWith('--metrics-port')));
});

test('the sidecar runs the CLI, not the image\'s ENTRYPOINT (the operator, which refuses the proxy\'s arguments)', () => {
  const root = new URL('../../../', import.meta.url);
  const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
  const workdir = [...dockerfile.matchAll(/^WORKDIR (\S+)$/gm)].at(-1)![1];
  const bin = (JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { bin: Record<string, string> }).bin['agent-identity'];
  assert.match(dockerfile, /^ENTRYPOINT \[.*"dist\/main\.js"\]$/m, 'the ENTRYPOINT is the operator');
  const command = sidecarOf(injected(agentPod('planner')))!.command as string[];
  assert.equal(command.at(-1), `${workdir}/${bin}`);
});

test('the sidecar meets the restricted Pod Security Standard on its own', () => {
  assert.deepEqual(sidecarOf(injected(agentPod('planner')))!.securityContext, {
    runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
  });
});

test('the identity is mounted only into the proxy; the agent\'s containers get only the proxy environment', () => {
  const out = injected(agentPod('planner', { spec: {
    containers: [{ name: 'app', image: 'a', env: [{ name: 'KEEP', value: '1' }] }, { name: 'tools', image: 't' }],
    initContainers: [{ name: 'migrate', image: 'm' }],
  } }));
  const sidecar = sidecarOf(out)!;
  assert.deepEqual(sidecar.volumeMounts, [{ name: 'agent-identity', mountPath: DIR, readOnly: true }]);
  assert.equal(envOf(sidecar).AGENT_IDENTITY_KEY_FILE, `${DIR}/tls.key`, 'the proxy finds the files as the SDK does');
  const agents = [...out.spec.containers, ...out.spec.initContainers!.filter((c) => c.name !== PROXY_CONTAINER)];
  assert.deepEqual(agents.map((c) => c.name), ['app', 'tools', 'migrate']);
  for (const c of agents) {
    assert.equal(c.volumeMounts, undefined, `${c.name} mounts nothing`);
    assert.deepEqual({ ...envOf(c), KEEP: undefined }, {
      HTTP_PROXY: 'http://127.0.0.1:15001', http_proxy: 'http://127.0.0.1:15001',
      NO_PROXY: 'localhost,127.0.0.1,::1', no_proxy: 'localhost,127.0.0.1,::1',
      HOST: '127.0.0.1', UVICORN_HOST: '127.0.0.1', FLASK_RUN_HOST: '127.0.0.1', KEEP: undefined,
    }, c.name);
    assert.ok(!Object.keys(envOf(c)).some((k) => k.startsWith('AGENT_IDENTITY_')), `${c.name} is not told where any key is`);
  }
  assert.equal(envOf(out.spec.containers[0]!).KEEP, '1', 'the agent\'s own variables stay');
});

test('a variable the webhook owns is set to its value: an agent bound to 0.0.0.0 would be reachable around the proxy', () => {
  const out = injected(agentPod('planner', { spec: { containers: [{ name: 'app', image: 'a', env: [{ name: 'HOST', value: '0.0.0.0' }] }] } }));
  assert.equal(envOf(out.spec.containers[0]!).HOST, '127.0.0.1');
});

test('the annotation names the containers that get the proxy environment; the proxy is never one of them', () => {
  const p = agentPod('planner', { annotations: { 'agentidentity.dev/inject-containers': `app,${PROXY_CONTAINER}` }, spec: { containers: [{ name: 'app', image: 'a' }, { name: 'metrics', image: 'x' }] } });
  const { patch, summary } = inject(p);
  const out = applyPatch(p, patch);
  assert.equal(envOf(out.spec.containers[0]!).HTTP_PROXY, 'http://127.0.0.1:15001');
  assert.equal(out.spec.containers[1]!.env, undefined, 'metrics was not named');
  assert.deepEqual(summary, {
    identity: 'planner', spiffeID: 'spiffe://cluster.local/ns/agents/agent/planner', secret: 'planner-identity',
    mountPath: DIR, containers: [PROXY_CONTAINER], proxy: { port: 8443, appPort: 8080, mode: 'http', agents: ['app'] },
  });
  assert.deepEqual(JSON.parse(out.metadata.annotations!['agentidentity.dev/injected']!), summary);
});

test('tcp mode and another mount path reach the proxy\'s arguments', () => {
  const i = proxied('planner', { port: 9000, appPort: 5432, mode: 'tcp' });
  const out = applyPatch(agentPod('planner'), injectIdentity(agentPod('planner'), i, { proxy: config, mountPath: '/identity' }).patch);
  assert.deepEqual(sidecarOf(out)!.args, proxyArgs({ port: 9000, appPort: 5432, mode: 'tcp' }, '/identity'));
  assert.deepEqual(sidecarOf(out)!.args, ['proxy', '--identity-dir=/identity', '--inbound-port=9000', '--app-port=5432', '--mode=tcp', '--outbound-port=15001']);
});

test('pod-certificate delivery: the kubelet\'s key lands in the proxy alone', () => {
  const i = proxied('planner', undefined, { delivery: 'PodCertificate' });
  const out = injected(agentPod('planner'), i);
  const sources = out.spec.volumes!.find((v) => v.name === 'agent-identity')!.projected!.sources!;
  assert.ok(sources.some((s) => s.podCertificate), 'a podCertificate projection');
  assert.deepEqual(sidecarOf(out)!.volumeMounts, [{ name: 'agent-identity', mountPath: DIR, readOnly: true }]);
  assert.equal(out.spec.containers[0]!.volumeMounts, undefined);
});

test('injecting again changes nothing, also over a pod read back with the API server\'s defaults', () => {
  const once = injected(agentPod('planner', { spec: { containers: [{ name: 'app', image: 'a' }], initContainers: [{ name: 'migrate', image: 'm' }] } }));
  assert.deepEqual(inject(once).patch, []);
  // What the API server adds to a stored container: defaults we do not set are not compared.
  const readBack = structuredClone(once);
  Object.assign(sidecarOf(readBack)!, { terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File' });
  assert.deepEqual(inject(readBack).patch, []);
});

test('a stale sidecar (an older image, other ports) is replaced whole, where it is', () => {
  const once = injected(agentPod('planner'));
  const newer = proxied('planner', { port: 9443, appPort: 8080 });
  const { patch } = inject(once, newer);
  assert.ok(patch.some((op) => op.op === 'replace' && op.path === '/spec/initContainers/0'), JSON.stringify(patch));
  const out = applyPatch(once, patch);
  assert.equal(out.spec.initContainers!.length, 1);
  assert.deepEqual(sidecarOf(out)!.ports, [{ name: 'agent-proxy', containerPort: 9443, protocol: 'TCP' }]);
  assert.deepEqual(inject(out, newer).patch, []);
});

test('the env operations address the agent\'s initContainers before the sidecar shifts them', () => {
  const p = agentPod('planner', { spec: { containers: [{ name: 'app', image: 'a' }], initContainers: [{ name: 'a', image: 'a', env: [{ name: 'X', value: '1' }] }, { name: 'b', image: 'b' }] } });
  const out = injected(p);
  assert.deepEqual(out.spec.initContainers!.map((c) => [c.name, envOf(c).HTTP_PROXY]), [[PROXY_CONTAINER, undefined], ['a', 'http://127.0.0.1:15001'], ['b', 'http://127.0.0.1:15001']]);
  assert.equal(envOf(out.spec.initContainers![1]!).X, '1');
});

test('without a configured proxy image the pod is refused, naming the chart value and the flag', () => {
  const r = injectIdentity(agentPod('planner'), planner);
  assert.deepEqual(r.patch, []);
  assert.equal(r.refusal?.reason, 'ProxyImageNotConfigured');
  assert.equal(r.refusal?.message, 'AgentIdentity "planner" has spec.proxy, but the operator was started without a proxy image, so pod "agent" cannot get its proxy; set the chart value proxy.image (operator flag --proxy-image), or remove spec.proxy');
});

test('a container of the pod\'s own that takes the proxy\'s name is refused', () => {
  const r = inject(agentPod('planner', { spec: { containers: [{ name: PROXY_CONTAINER, image: 'mine' }] } }));
  assert.equal(r.refusal?.reason, 'ProxyContainerNameTaken');
  assert.match(r.refusal!.message, /^pod "agent" has a container named "agent-identity-proxy", the name of the identity proxy the webhook adds for AgentIdentity "planner"; rename it$/);
});

test('an identity without spec.proxy is injected as before: mount and variables in the agent, no sidecar', () => {
  const out = applyPatch(agentPod('planner'), injectIdentity(agentPod('planner'), identity('planner'), { proxy: config }).patch);
  assert.equal(out.spec.initContainers, undefined);
  assert.ok(out.spec.containers[0]!.volumeMounts?.some((m) => m.name === 'agent-identity'));
  assert.equal(envOf(out.spec.containers[0]!).HTTP_PROXY, undefined);
  assert.ok(AGENT_PROXY_ENV.every((e) => envOf(out.spec.containers[0]!)[e.name] === undefined));
});

// --- the validating rule: with spec.proxy, nothing but the proxy reaches the identity

const judge = (p: Pod, i = planner) => validatePod({ pod: p, namespace: 'agents', identities: [i], secrets: new Map([['planner-identity', ownedSecret({ name: 'planner', uid: 'uid-planner' })]]) });

function refusedWith(p: Pod, i = planner): string {
  const v = judge(p, i);
  assert.equal(v.allowed, false, 'the pod was refused');
  if (v.allowed) throw new Error('unreachable');
  assert.equal(v.reason, 'IdentityOutsideProxy');
  return v.message;
}

test('the injected pod itself is allowed', () => {
  assert.deepEqual(judge(injected(agentPod('planner'))), { allowed: true });
});

test('an agent container that also mounts the identity volume is refused, naming the container', () => {
  const p = injected(agentPod('planner'));
  p.spec.containers[0]!.volumeMounts = [{ name: 'agent-identity', mountPath: '/keys', readOnly: true }];
  assert.equal(refusedWith(p), 'container "app" of pod "agent" mounts the identity volume "agent-identity"; AgentIdentity "planner" has spec.proxy, so only its identity proxy (agent-identity-proxy) may hold the key: remove that from container "app", and let it call other agents through HTTP_PROXY');
});

test('the identity Secret mounted by a volume of the pod\'s own, even under the right ServiceAccount, is refused', () => {
  const p = agentPod('planner', { spec: { containers: [{ name: 'app', image: 'a', volumeMounts: [{ name: 'loot', mountPath: '/loot' }] }], volumes: [{ name: 'loot', projected: { sources: [{ secret: { name: 'planner-identity' } }] } }] } });
  assert.match(refusedWith(injected(p)), /^container "app" of pod "agent" mounts volume "loot", which projects Secret "planner-identity" \(the identity's key\); /);
});

test('the key through env or envFrom, in any kind of container, is refused', () => {
  const env = agentPod('planner', { spec: { containers: [{ name: 'app', image: 'a' }], initContainers: [{ name: 'setup', image: 's', env: [{ name: 'K', valueFrom: { secretKeyRef: { name: 'planner-identity', key: 'tls.key' } } }] }] } });
  assert.match(refusedWith(injected(env)), /^initContainer "setup" of pod "agent" reads Secret "planner-identity" \(the identity's key\) into env K; /);
  const debug = injected(agentPod('planner'));
  debug.spec.ephemeralContainers = [{ name: 'debugger', image: 'd', envFrom: [{ secretRef: { name: 'planner-identity' } }] }];
  assert.match(refusedWith(debug), /^ephemeralContainer "debugger" of pod "agent" reads Secret "planner-identity" \(the identity's key\) through envFrom; /);
});

test('a pod certificate of our signer in another container is refused', () => {
  const i = proxied('planner', undefined, { delivery: 'PodCertificate' });
  const p = agentPod('planner', { spec: {
    containers: [{ name: 'app', image: 'a', volumeMounts: [{ name: 'mine', mountPath: '/certs' }] }],
    volumes: [{ name: 'mine', projected: { sources: [{ podCertificate: { signerName: 'agentidentity.dev/svid', keyType: 'ECDSAP256', credentialBundlePath: 'b.pem' } }] } }],
  } });
  assert.match(refusedWith(injected(p, i), i), /^container "app" of pod "agent" mounts volume "mine", which projects a pod certificate of signer agentidentity\.dev\/svid/);
});

test('without spec.proxy the same mount is the ordinary injection, and allowed', () => {
  const plain = identity('planner');
  const p = applyPatch(agentPod('planner'), injectIdentity(agentPod('planner'), plain).patch);
  assert.deepEqual(judge(p, plain), { allowed: true });
});

test('with spec.proxy another volume at the identity directory of an agent container is no conflict: nothing is mounted there', () => {
  const p = agentPod('planner', { spec: { containers: [{ name: 'app', image: 'a', volumeMounts: [{ name: 'data', mountPath: DIR }] }], volumes: [{ name: 'data', emptyDir: {} }] } });
  assert.deepEqual(judge(injected(p)), { allowed: true });
});

test('a pod that shares the node\'s network or processes, or one process namespace, is refused: the proxy would not be apart', () => {
  for (const [field, what] of [
    ['hostNetwork', 'its 127.0.0.1 would be the node\'s, open to every host-network pod'],
    ['hostPID', 'its other containers could read the proxy\'s key through /proc'],
    ['shareProcessNamespace', 'its other containers could read the proxy\'s key through /proc'],
  ] as const) {
    const v = judge(injected(agentPod('planner', { spec: { containers: [{ name: 'app', image: 'a' }], [field]: true } })));
    assert.deepEqual(v, {
      allowed: false, reason: 'ProxyNotIsolated',
      message: `pod "agent" sets ${field}: true, so ${what}; AgentIdentity "planner" has spec.proxy, and its identity proxy (agent-identity-proxy) must hold the key alone: remove ${field}`,
    }, field);
  }
  assert.deepEqual(judge(injected(agentPod('planner', { spec: { containers: [{ name: 'app', image: 'a' }], shareProcessNamespace: false } }))), { allowed: true });
});

test('a debug container aimed at the proxy is refused; one aimed at the agent is not', () => {
  const p = injected(agentPod('planner'));
  p.spec.ephemeralContainers = [{ name: 'dbg', image: 'busybox', targetContainerName: PROXY_CONTAINER }];
  const v = judge(p);
  assert.equal(v.allowed, false);
  if (v.allowed) throw new Error('unreachable');
  assert.equal(v.message, 'ephemeralContainer "dbg" of pod "agent" targets agent-identity-proxy, whose key it could read through /proc; AgentIdentity "planner" has spec.proxy, and its identity proxy (agent-identity-proxy) must hold the key alone: target the agent\'s container instead');
  p.spec.ephemeralContainers = [{ name: 'dbg', image: 'busybox', targetContainerName: 'app' }];
  assert.deepEqual(judge(p), { allowed: true });
});

test('without spec.proxy, sharing a process namespace is the pod\'s own business', () => {
  const plain = identity('planner');
  const p = applyPatch(agentPod('planner', { spec: { containers: [{ name: 'app', image: 'a' }], shareProcessNamespace: true } }), injectIdentity(agentPod('planner'), plain).patch);
  assert.deepEqual(judge(p, plain), { allowed: true });
});

test('a pod that is not the identity\'s may not take a proxy identity\'s key: its Secret or a pod certificate naming it', () => {
  // Unlabelled, running as the identity's ServiceAccount (a pod an agent made with its own token).
  const viaSecret = agentPod('planner', { labels: {}, spec: { containers: [{ name: 'app', image: 'a' }], volumes: [{ name: 'v', secret: { secretName: 'planner-identity' } }] } });
  delete viaSecret.metadata.labels!['agentidentity.dev/agent'];
  const v = judge(viaSecret);
  assert.equal(v.allowed, false);
  if (v.allowed) throw new Error('unreachable');
  assert.equal(v.reason, 'IdentityOutsideProxy');
  assert.equal(v.message, 'pod "agent" uses Secret "planner-identity" (volume "v"); AgentIdentity "planner" has spec.proxy, so only its identity proxy may hold its key: label the pod agentidentity.dev/agent: planner and let the webhook inject the proxy, or remove that');

  const i = proxied('planner', undefined, { delivery: 'PodCertificate' });
  const viaPodCertificate = agentPod('planner', { spec: { containers: [{ name: 'app', image: 'a' }], volumes: [{ name: 'pc', projected: { sources: [{ podCertificate: { signerName: 'agentidentity.dev/svid', userAnnotations: { 'agentidentity.dev/agent': 'planner' } } }] } }] } });
  delete viaPodCertificate.metadata.labels!['agentidentity.dev/agent'];
  const w = validatePod({ pod: viaPodCertificate, namespace: 'agents', identities: [i], secrets: new Map() });
  assert.equal(w.allowed, false);
  if (w.allowed) throw new Error('unreachable');
  assert.match(w.message, /^pod "agent" asks for a pod certificate of AgentIdentity "planner" \(volume "pc"\); AgentIdentity "planner" has spec\.proxy/);

  // Without spec.proxy the same pod is allowed: its ServiceAccount is the identity's.
  assert.deepEqual(judge(viaSecret, identity('planner')), { allowed: true });
});

test('resources read back in the API server\'s canonical form ("0.5" as "500m", "1024Mi" as "1Gi") need no patch; other amounts do', () => {
  const spelled: ProxySidecarConfig = { ...config, resources: { requests: { cpu: '0.5', memory: '1024Mi' }, limits: { memory: '1e9' } } };
  const p = agentPod('planner');
  const once = applyPatch(p, injectIdentity(p, planner, { proxy: spelled }).patch);
  const readBack = structuredClone(once);
  sidecarOf(readBack)!.resources = { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '1G' } };
  assert.deepEqual(injectIdentity(readBack, planner, { proxy: spelled }).patch, []);
  sidecarOf(readBack)!.resources = { requests: { cpu: '600m', memory: '1Gi' }, limits: { memory: '1G' } };
  assert.equal(injectIdentity(readBack, planner, { proxy: spelled }).patch.length, 1, 'a different amount is replaced');
  sidecarOf(readBack)!.resources = { requests: { cpu: '500m', memory: '1Gi' } };
  assert.equal(injectIdentity(readBack, planner, { proxy: spelled }).patch.length, 1, 'a missing limit is replaced');
});

test('the pod is labelled agentidentity.dev/proxy=<identity>, the only pods the operator watches for its app-port check; pods without spec.proxy are not', () => {
  const out = injected(agentPod('planner'));
  assert.equal(out.metadata.labels?.['agentidentity.dev/proxy'], 'planner');
  assert.equal(out.metadata.labels?.['agentidentity.dev/agent'], 'planner', 'the opt-in label stays');
  const spoofed = injected(agentPod('planner', { labels: { 'agentidentity.dev/proxy': 'other' } }));
  assert.equal(spoofed.metadata.labels?.['agentidentity.dev/proxy'], 'planner', 'a value the pod brought is corrected');
  const plain = applyPatch(agentPod('planner'), injectIdentity(agentPod('planner'), identity('planner')).patch);
  assert.equal(plain.metadata.labels?.['agentidentity.dev/proxy'], undefined);
});
