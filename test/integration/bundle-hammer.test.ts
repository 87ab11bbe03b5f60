// Issue 17, item 2: a namespace user who edits the bundle ConfigMap copy in
// its own namespace in a tight loop races the operator's writes of that copy
// (409 conflicts). That must never stop the CA: identities in other
// namespaces become Ready as fast as without it, the TrustDomain stays Ready,
// and the copy is restored once the edits stop.
// The hammering lasts BUNDLE_HAMMER_MS (default 30 s). create→Ready is
// measured for new identities in new namespaces in one run: quiet (before and
// after), while the tenant hammers an unrelated ConfigMap (the same load, no
// race), and while it hammers the bundle copy; the medians are printed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, PatchStrategy, setHeaderOptions, Watch } from '@kubernetes/client-node';
import { AGENT_IDENTITY, API_VERSION, GROUP, SECRET_BUNDLE, VERSION } from '../../src/api/group.ts';
import { bundleConfigMapName } from '../../src/api/defaults.ts';
import type { AgentIdentity, ConfigMap, TrustDomain } from '../../src/api/types.ts';
import type { Operator } from '../../src/operator.ts';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually, OPERATOR_NAMESPACE } from '../support/operator.ts';
import { api, isReady } from '../support/objects.ts';
import { makeTenant, type Tenant } from '../support/tenant.ts';

const HAMMER_MS = Number(process.env.BUNDLE_HAMMER_MS ?? 30_000);
/** Identities measured in each quiet window (one before the hammering, one after). */
const QUIET_SAMPLES = 10;
const COPY = bundleConfigMapName('default');
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;
let tenant: Tenant;
// Watches, not polling: a poll every few ms would load the API server more than the tenant does,
// and would time Ready only to its interval.
const readyAt = new Map<string, number>();
const readyWaiters = new Map<string, () => void>();
const watches: AbortController[] = [];
let stopped = false;
/** Every Ready condition of TrustDomain "default" the watch saw that was not True, and a watch that could not resume. */
const trustDomainNotReady: string[] = [];

before(async () => {
  ({ env, op, a } = await setUp());
  await eventually(async () => isReady(await a.getTrustDomain('default')), { what: 'TrustDomain default Ready' });
  // The tenant's namespace has an agent, so the operator publishes a bundle copy there.
  tenant = await makeTenant(env.kc, await env.namespace('tenant'));
  await a.createIdentity(tenant.namespace, 'resident');
  await eventually(async () => isReady(await a.getIdentity(tenant.namespace, 'resident')), { what: 'the tenant\'s identity Ready' });
  await eventually(() => copyRestored(), { what: 'the tenant namespace\'s bundle copy' });
  others = await Promise.all(Array.from({ length: 10 }, () => env.namespace('agents')));
  await tenant.kc.makeApiClient(CoreV1Api).createNamespacedConfigMap({ namespace: tenant.namespace, body: { metadata: { name: 'notes' } } });
  await watchAll(`/apis/${GROUP}/${VERSION}/${AGENT_IDENTITY.plural}`, {}, (o: AgentIdentity) => {
    const key = `${o.metadata.namespace}/${o.metadata.name}`;
    if (!isReady(o) || readyAt.has(key)) return;
    readyAt.set(key, performance.now());
    readyWaiters.get(key)?.();
  });
  await watchAll(`/apis/${GROUP}/${VERSION}/trustdomains`, { fieldSelector: 'metadata.name=default' }, (o: TrustDomain) => {
    const ready = o.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status !== 'True') trustDomainNotReady.push(`Ready ${ready?.status}: ${ready?.reason} ${ready?.message}`);
  });
});
after(async () => {
  stopped = true;
  for (const w of watches) w.abort();
  await tearDown({ env, op });
});

/**
 * Every event at `path` until the test ends. client-node ends a watch after 30 s without an event (the
 * TrustDomain's may rightly stay that quiet), so an ended watch resumes from the last resourceVersion seen.
 */
async function watchAll<T extends { metadata: { resourceVersion?: string } }>(path: string, query: Record<string, string>, onObject: (o: T) => void): Promise<void> {
  let resourceVersion: string | undefined;
  const start = async (): Promise<void> => {
    watches.push(await new Watch(env.kc).watch(path, { ...query, ...(resourceVersion ? { resourceVersion } : {}) }, (_type, o: T) => {
      resourceVersion = o.metadata.resourceVersion;
      onObject(o);
    }, () => { if (!stopped) start().catch((err) => trustDomainNotReady.push(`cannot watch ${path} again: ${String(err)}`)); }));
  };
  await start();
}

const readConfigMap = (namespace: string) => a.core.readNamespacedConfigMap({ namespace, name: COPY }) as Promise<ConfigMap>;

/** The tenant's copy holds the bundle the home copy holds, and is still the TrustDomain's. */
async function copyRestored(): Promise<boolean> {
  const [home, copy] = await Promise.all([readConfigMap(OPERATOR_NAMESPACE), readConfigMap(tenant.namespace)]);
  return !!home.data?.[SECRET_BUNDLE]?.includes('BEGIN CERTIFICATE') && copy.data?.[SECRET_BUNDLE] === home.data[SECRET_BUNDLE]
    && copy.metadata.ownerReferences?.some((o) => o.kind === 'TrustDomain' && o.controller) === true;
}

// Other tenants' namespaces, taken in turn. A fixed set, so every window measures a cluster of about the
// same shape (a new namespace per identity would make each later window publish hundreds more bundle copies).
let others: string[] = [];
let created = 0;

/** create→Ready of one new identity in another namespace, in ms (its ServiceAccount exists first). */
async function createToReady(): Promise<number> {
  const namespace = others[created % others.length]!;
  const name = `agent-${created++}`;
  await a.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  const started = performance.now();
  await a.custom.createNamespacedCustomObject({
    group: GROUP, version: VERSION, plural: AGENT_IDENTITY.plural, namespace,
    body: { apiVersion: API_VERSION, kind: AGENT_IDENTITY.kind, metadata: { name }, spec: { serviceAccountName: name } },
  });
  const key = `${namespace}/${name}`;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${key} not Ready after 60 s`)), 60_000);
    readyWaiters.set(key, () => { clearTimeout(timer); resolve(); });
    if (readyAt.has(key)) readyWaiters.get(key)!();
  });
  return readyAt.get(key)! - started;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The TrustDomain reconciler's write conflicts and its passes so far, from the operator's metrics. */
async function trustCounts(): Promise<{ conflicts: number; passes: number }> {
  const sum = async (m: typeof op.metrics.reconciles, labels: Record<string, string>) =>
    (await m.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x)).reduce((n, v) => n + v.value, 0);
  const conflicts = await sum(op.metrics.transientErrors, { controller: 'trustdomain', reason: 'Conflict' });
  return { conflicts, passes: conflicts + await sum(op.metrics.reconciles, { controller: 'trustdomain' }) };
}

/** The namespace user: merge patches to one of its ConfigMaps, each sent as soon as the previous one is answered. */
async function hammer(configMap: string, ms: number): Promise<number> {
  const tenantCore = tenant.kc.makeApiClient(CoreV1Api);
  const end = performance.now() + ms;
  let edits = 0;
  while (performance.now() < end) {
    await tenantCore.patchNamespacedConfigMap({ namespace: tenant.namespace, name: configMap, body: { data: { [SECRET_BUNDLE]: `not the bundle ${edits}` } } }, mergePatch);
    edits++;
  }
  return edits;
}

/** create→Ready of identity after identity while the tenant hammers `configMap` for `ms`. */
async function issuedWhileHammering(configMap: string, ms: number): Promise<{ edits: number; samples: number[] }> {
  const edits = hammer(configMap, ms);
  const samples: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) samples.push(await createToReady());
  return { edits: await edits, samples };
}

test(`a tenant editing its bundle copy for ${HAMMER_MS / 1000} s stops no issuance elsewhere; the copy is restored after`, async () => {
  const quietBefore: number[] = [];
  for (let i = 0; i < QUIET_SAMPLES; i++) quietBefore.push(await createToReady());
  // The control: the same tenant, the same tight loop, on a ConfigMap the operator does not write. On a
  // shared machine the load alone slows every API call; the bundle copy must cost nothing beyond that.
  // Half before and half after the bundle copy's turn, so a machine getting busier or quieter evens out.
  const controlBefore = await issuedWhileHammering('notes', HAMMER_MS / 2);

  const before = await trustCounts();
  const signer = op.store.get('default')?.signer?.certificate.serialNumber;
  assert.ok(signer, 'signing before the hammering');
  // What would show the CA stopping: the in-process store losing its signer (sampled every 5 ms), and the
  // TrustDomain's Ready condition (every change, from the watch).
  const lost: string[] = [];
  trustDomainNotReady.length = 0;
  const storeSampler = setInterval(() => {
    const state = op.store.get('default');
    if (state?.signer?.certificate.serialNumber !== signer) lost.push(`store: ${state ? 'no signer' : op.store.failure('default') ?? 'no state'}`);
  }, 5);
  let hammered: { edits: number; samples: number[] };
  try {
    hammered = await issuedWhileHammering(COPY, HAMMER_MS);
  } finally {
    clearInterval(storeSampler);
  }
  lost.push(...trustDomainNotReady);
  const during = await trustCounts();

  const controlAfter = await issuedWhileHammering('notes', HAMMER_MS / 2);
  await eventually(() => copyRestored(), { what: 'the tenant\'s copy restored' });
  const quietAfter: number[] = [];
  for (let i = 0; i < QUIET_SAMPLES; i++) quietAfter.push(await createToReady());
  const quiet = [...quietBefore, ...quietAfter];
  const control = { edits: controlBefore.edits + controlAfter.edits, samples: [...controlBefore.samples, ...controlAfter.samples] };

  const warnings = (await a.trustDomainEvents('default')).filter((e) => e.type === 'Warning').map((e) => `${e.reason}: ${e.message}`);
  const [quietP50, controlP50, hammeredP50] = [quiet, control.samples, hammered.samples].map(median) as [number, number, number];
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  console.log([
    `bundle hammer, ${HAMMER_MS / 1000} s each: ${hammered.edits} tenant edits of its bundle copy (${control.edits} of an unrelated ConfigMap);`
      + ` ${during.passes - before.passes} TrustDomain passes, ${during.conflicts - before.conflicts} of them met a write conflict and were requeued`,
    `create→Ready p50: quiet ${ms(quietP50)} (n=${quiet.length}; ${ms(median(quietBefore))} before, ${ms(median(quietAfter))} after), tenant editing an unrelated ConfigMap ${ms(controlP50)} (n=${control.samples.length}),`
      + ` tenant editing the bundle copy ${ms(hammeredP50)} (n=${hammered.samples.length});`
      + ` bundle copy / unrelated ${(hammeredP50 / controlP50).toFixed(2)}, bundle copy / quiet ${(hammeredP50 / quietP50).toFixed(2)}`,
    `signer lost or TrustDomain not Ready: ${lost.length} times; Warnings: ${warnings.length}`,
  ].join('\n'));

  assert.ok(hammered.edits > 100, `the tenant edited in a tight loop (${hammered.edits} edits)`);
  assert.ok(during.conflicts > before.conflicts, 'the edits raced the operator\'s writes');
  assert.deepEqual(lost, [], 'the CA kept signing and the TrustDomain stayed Ready throughout');
  assert.deepEqual(warnings, [], 'no Warning on the TrustDomain: a lost write race is no failure');
  assert.ok(hammered.samples.length >= 5, `identities were issued during the hammering (${hammered.samples.length})`);
  // Generous, and against the same load without the race: only a hammering that holds back issuance (the old
  // store.fail) crosses it. Against quiet it is printed only: on a shared 2-core machine the tenant's loop alone
  // measured 2.0x (35 → 71 ms), with the operator not involved at all.
  assert.ok(hammeredP50 <= 1.5 * controlP50, `create→Ready p50 ${ms(hammeredP50)} editing the bundle copy vs ${ms(controlP50)} editing an unrelated ConfigMap`);
});
