// The injection patch: what it adds, into which containers, and that a second
// run over its own result (or over a pod read back with the API server's
// defaults) asks for nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { injectIdentity, requestedContainers, targetContainers } from '../../../src/webhook/mutate.ts';
import type { Container, Pod, Volume } from '../../../src/webhook/pod.ts';
import { agentPod, applyPatch, identity } from './fixtures.ts';

const planner = identity('planner');
const DIR = '/var/run/agentidentity';
const ENV = {
  AGENT_IDENTITY_DIR: DIR,
  AGENT_IDENTITY_CERT_FILE: `${DIR}/tls.crt`,
  AGENT_IDENTITY_KEY_FILE: `${DIR}/tls.key`,
  AGENT_IDENTITY_BUNDLE_FILE: `${DIR}/ca.crt`,
  AGENT_IDENTITY_POLICY_FILE: `${DIR}/policy.json`,
  AGENT_IDENTITY_SPIFFE_ID: 'spiffe://cluster.local/ns/agents/agent/planner',
};

const injected = (p: Pod, i = planner) => applyPatch(p, injectIdentity(p, i).patch);
const envOf = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
const volume = (p: Pod) => p.spec.volumes?.find((v) => v.name === 'agent-identity');

test('a labelled pod gets one projected volume: the Secret\'s three files and its policy.json', () => {
  const out = injected(agentPod('planner'));
  assert.equal(out.spec.volumes?.length, 1);
  assert.deepEqual(volume(out), {
    name: 'agent-identity',
    projected: {
      defaultMode: 0o644,
      sources: [
        { secret: { name: 'planner-identity', items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }, { key: 'ca.crt', path: 'ca.crt' }, { key: 'policy.json', path: 'policy.json' }] } },
        { configMap: { name: 'trust-bundle-default', items: [{ key: 'federated-bundles.json', path: 'federated-bundles.json' }], optional: true } },
      ],
    },
  } satisfies Volume);
});

test('every container and initContainer gets the read-only mount and the variables', () => {
  const out = injected(agentPod('planner', { spec: {
    containers: [{ name: 'app', image: 'a' }, { name: 'sidecar', image: 's', env: [{ name: 'KEEP', value: '1' }], volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
    initContainers: [{ name: 'init', image: 'i' }],
    volumes: [{ name: 'data', emptyDir: {} }],
  } }));
  for (const c of [...out.spec.containers, ...out.spec.initContainers!]) {
    assert.deepEqual(c.volumeMounts?.find((m) => m.name === 'agent-identity'), { name: 'agent-identity', mountPath: DIR, readOnly: true }, c.name);
    assert.deepEqual({ ...envOf(c), KEEP: undefined }, { ...ENV, KEEP: undefined }, c.name);
  }
  const sidecar = out.spec.containers[1]!;
  assert.equal(envOf(sidecar).KEEP, '1', 'existing variables stay');
  assert.equal(sidecar.volumeMounts![0]!.name, 'data', 'existing mounts stay, first');
  assert.deepEqual(out.spec.volumes!.map((v) => v.name), ['data', 'agent-identity'], 'existing volumes stay');
});

test('the injected annotation records what was injected, as small JSON', () => {
  const p = agentPod('planner', { annotations: { other: 'x' }, spec: { containers: [{ name: 'app' }, { name: 'tool' }] } });
  const { patch, summary } = injectIdentity(p, planner);
  const out = applyPatch(p, patch);
  assert.equal(out.metadata.annotations!.other, 'x');
  const recorded = JSON.parse(out.metadata.annotations!['agentidentity.dev/injected']!);
  assert.deepEqual(recorded, summary);
  assert.deepEqual(recorded, {
    identity: 'planner', spiffeID: ENV.AGENT_IDENTITY_SPIFFE_ID, secret: 'planner-identity', mountPath: DIR, containers: ['app', 'tool'],
  });
  assert.ok(patch.some((op) => op.path === '/metadata/annotations/agentidentity.dev~1injected'), 'the / in the key is escaped as ~1');
});

test('idempotent: running again on the injected pod yields an empty patch', () => {
  for (const p of [
    agentPod('planner'),
    agentPod('planner', { annotations: { a: 'b' }, spec: { containers: [{ name: 'a', env: [{ name: 'X', value: '1' }], volumeMounts: [] }, { name: 'b' }], initContainers: [{ name: 'i' }], volumes: [] } }),
    agentPod('planner', { annotations: { 'agentidentity.dev/inject-containers': 'b' }, spec: { containers: [{ name: 'a' }, { name: 'b' }] } }),
  ]) {
    const once = injected(p);
    assert.notDeepEqual(once, p, 'the first run changed the pod');
    assert.deepEqual(injectIdentity(once, planner).patch, []);
  }
});

test('idempotent against the API server\'s read-back: field order and defaulted fields of other objects do not matter', () => {
  const once = injected(agentPod('planner'));
  // What comes back from the API server: keys in another order, defaults on the container and the mount.
  const v = volume(once)!;
  const readBack: Pod = {
    ...once,
    spec: {
      ...once.spec,
      volumes: [{ projected: { sources: v.projected!.sources, defaultMode: 420 }, name: 'agent-identity' }],
      containers: once.spec.containers.map((c) => ({ ...c, imagePullPolicy: 'IfNotPresent', terminationMessagePath: '/dev/termination-log', volumeMounts: c.volumeMounts!.map((m) => ({ readOnly: true, mountPath: m.mountPath, name: m.name })) })),
    },
  };
  assert.deepEqual(injectIdentity(readBack, planner).patch, []);
});

test('inject-containers names the containers (and initContainers) that receive the identity; spaces are ignored', () => {
  const p = agentPod('planner', {
    annotations: { 'agentidentity.dev/inject-containers': ' app , setup' },
    spec: { containers: [{ name: 'app' }, { name: 'proxy' }], initContainers: [{ name: 'setup' }, { name: 'migrate' }] },
  });
  const { patch, summary } = injectIdentity(p, planner);
  const out = applyPatch(p, patch);
  assert.deepEqual(summary.containers, ['app', 'setup']);
  const has = (c: Container) => (c.volumeMounts ?? []).some((m) => m.name === 'agent-identity') && envOf(c).AGENT_IDENTITY_DIR === DIR;
  assert.deepEqual(out.spec.containers.map(has), [true, false]);
  assert.deepEqual(out.spec.initContainers!.map(has), [true, false]);
});

test('an annotation that names no container of the pod injects nothing (the validating webhook says why)', () => {
  const p = agentPod('planner', { annotations: { 'agentidentity.dev/inject-containers': 'nope' } });
  const { patch, summary } = injectIdentity(p, planner);
  assert.deepEqual(patch, []);
  assert.deepEqual(summary.containers, []);
});

test('inject-containers is read as a set, and only as far as the pod has containers: the sender chooses its length', () => {
  const p = agentPod('planner', {
    annotations: { 'agentidentity.dev/inject-containers': 'app,app, app,setup' },
    spec: { containers: [{ name: 'app' }], initContainers: [{ name: 'setup' }] },
  });
  assert.deepEqual(requestedContainers(p), new Set(['app', 'setup']));
  // 200,000 names for a two-container pod: three are read (one more than it has, so a missing one still shows).
  const flood = Array.from({ length: 200_000 }, (_, i) => `n${i}`).join(',');
  const big = { ...p, metadata: { ...p.metadata, annotations: { 'agentidentity.dev/inject-containers': `${flood},app` } } };
  assert.deepEqual(requestedContainers(big), new Set(['n0', 'n1', 'n2']));
  assert.deepEqual(injectIdentity(big, planner).patch, [], 'none of the names read is a container');
  assert.deepEqual(requestedContainers({ ...p, metadata: { ...p.metadata, annotations: { 'agentidentity.dev/inject-containers': ','.repeat(100_000) } } }), new Set());
});

test('a pod with tens of thousands of containers is answered from one pass over them', () => {
  const containers = Array.from({ length: 40_000 }, (_, i) => ({ name: `c${i}` }));
  const names = `${Array.from({ length: 39_998 }, (_, i) => `c${i + 2}`).join(',')},c1`;
  const p = agentPod('planner', { spec: { containers }, annotations: { 'agentidentity.dev/inject-containers': names } });
  assert.equal(targetContainers(p).length, 39_999);
  const { patch, refusal } = injectIdentity(p, planner);
  assert.equal(refusal?.reason, 'TooManyContainers');
  assert.deepEqual(patch, [], 'no 30 MB patch is built for it');
});

test('never a subPath mount: subPath mounts do not see renewed certificates', () => {
  const p = agentPod('planner', { spec: { containers: [{ name: 'app', volumeMounts: [{ name: 'agent-identity', mountPath: `${DIR}/tls.crt`, subPath: 'tls.crt' }] }] } });
  const { patch } = injectIdentity(p, planner);
  assert.doesNotMatch(JSON.stringify(patch), /subPath/);
  const out = applyPatch(p, patch);
  assert.deepEqual(out.spec.containers[0]!.volumeMounts, [{ name: 'agent-identity', mountPath: DIR, readOnly: true }], 'the subPath mount of our volume is replaced by the directory mount');
  for (const c of injected(agentPod('planner', { spec: { containers: [{ name: 'a' }, { name: 'b' }], initContainers: [{ name: 'c' }] } })).spec.containers) {
    for (const m of c.volumeMounts ?? []) assert.equal(m.subPath, undefined);
  }
});

test('a stale injection (copied manifest of another identity) is brought up to date, not duplicated', () => {
  const before = injected(agentPod('planner'));
  const worker = identity('worker', 'planner', { secretName: 'worker-certs' });
  const relabelled = { ...before, metadata: { ...before.metadata, labels: { 'agentidentity.dev/agent': 'worker' } } };
  const out = injected(relabelled, worker);
  assert.equal(out.spec.volumes!.length, 1);
  assert.equal(volume(out)!.projected!.sources![0]!.secret!.name, 'worker-certs');
  assert.equal(volume(out)!.projected!.sources!.length, 2, 'policy.json comes from the Secret too; the second source is the optional federated-bundles.json');
  const c = out.spec.containers[0]!;
  assert.equal(c.env!.filter((e) => e.name === 'AGENT_IDENTITY_SPIFFE_ID').length, 1);
  assert.equal(envOf(c).AGENT_IDENTITY_SPIFFE_ID, 'spiffe://cluster.local/ns/agents/agent/worker');
  assert.equal(c.volumeMounts!.length, 1);
  assert.equal(JSON.parse(out.metadata.annotations!['agentidentity.dev/injected']!).identity, 'worker');
});

test('a variable the agent set to another value is replaced: the names are the SDK\'s contract', () => {
  const p = agentPod('planner', { spec: { containers: [{ name: 'app', env: [{ name: 'AGENT_IDENTITY_DIR', value: '/elsewhere' }, { name: 'AGENT_IDENTITY_KEY_FILE', valueFrom: { secretKeyRef: { name: 'x', key: 'y' } } }] }] } });
  const out = injected(p);
  const env = out.spec.containers[0]!.env!;
  assert.equal(env.length, 6);
  assert.deepEqual(env[0], { name: 'AGENT_IDENTITY_DIR', value: DIR });
  assert.deepEqual(env[1], { name: 'AGENT_IDENTITY_KEY_FILE', value: `${DIR}/tls.key` });
});

test('an identity not issued yet: everything but the SPIFFE ID is injected, and nothing is guessed', () => {
  const pending = identity('planner', 'planner', { spiffeID: undefined });
  const { patch, summary } = injectIdentity(agentPod('planner'), pending);
  const out = applyPatch(agentPod('planner'), patch);
  const env = envOf(out.spec.containers[0]!);
  assert.equal(env.AGENT_IDENTITY_SPIFFE_ID, undefined);
  assert.equal(env.AGENT_IDENTITY_CERT_FILE, `${DIR}/tls.crt`);
  assert.ok(volume(out));
  assert.equal('spiffeID' in summary, false);
  assert.deepEqual(injectIdentity(out, pending).patch, [], 'idempotent while pending too');
  // Once issued, a re-invocation adds only the ID (and the updated record).
  const later = injectIdentity(out, planner).patch;
  assert.deepEqual(later.map((op) => op.path), ['/spec/containers/0/env/-', '/metadata/annotations/agentidentity.dev~1injected']);
});

test('spec.secretName is the Secret that is mounted', () => {
  const out = injected(agentPod('planner'), identity('planner', 'planner', { secretName: 'custom' }));
  assert.equal(volume(out)!.projected!.sources![0]!.secret!.name, 'custom');
});

test('a container whose identity directory holds another volume is left alone', () => {
  const p = agentPod('planner', { spec: { containers: [{ name: 'app', volumeMounts: [{ name: 'mine', mountPath: `${DIR}/` }] }, { name: 'other' }], volumes: [{ name: 'mine', emptyDir: {} }] } });
  const { patch, summary } = injectIdentity(p, planner);
  assert.deepEqual(summary.containers, ['other']);
  const out = applyPatch(p, patch);
  assert.deepEqual(out.spec.containers[0], p.spec.containers[0]);
});

test('mountPath is an option', () => {
  const out = applyPatch(agentPod('planner'), injectIdentity(agentPod('planner'), planner, { mountPath: '/identity' }).patch);
  assert.equal(out.spec.containers[0]!.volumeMounts![0]!.mountPath, '/identity');
  assert.equal(envOf(out.spec.containers[0]!).AGENT_IDENTITY_POLICY_FILE, '/identity/policy.json');
});
