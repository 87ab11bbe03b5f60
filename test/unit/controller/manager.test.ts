// Declared controllers over fake informers: nothing is queued before every
// cache synced, predicates drop our own status writes, labels map owned
// objects to their owner, coalesced work waits, and every reconcile is counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { ObjectMeta } from '../../../src/api/types.ts';
import { byLabel, changesOf, controller, specOrMetadataChanged, Trigger, type KubeObject } from '../../../src/controller/controller.ts';
import { ControllerManager, type InformerLike } from '../../../src/controller/manager.ts';
import type { InformerHandlers } from '../../../src/kube/client.ts';
import { Metrics } from '../../../src/controller/metrics.ts';

/** An informer whose list and events the test drives. */
class FakeInformer<T extends KubeObject> implements InformerLike<T> {
  objects = new Map<string, T>();
  synced = false;
  readonly sync = Promise.withResolvers<void>();
  readonly h: InformerHandlers<T>;
  constructor(h: InformerHandlers<T>) { this.h = h; }
  async start() { await this.sync.promise; this.synced = true; }
  async stop() {}
  hasSynced() { return this.synced; }
  get(name: string, namespace?: string) { return this.objects.get(`${namespace ?? ''}/${name}`); }
  list() { return [...this.objects.values()]; }
  put(o: T) { this.objects.set(`${o.metadata.namespace ?? ''}/${o.metadata.name}`, o); this.h.onChange(o); }
  remove(o: T) { this.objects.delete(`${o.metadata.namespace ?? ''}/${o.metadata.name}`); this.h.onDelete?.(o); }
}

const obj = (metadata: ObjectMeta): KubeObject => ({ metadata });

function setup() {
  const metrics = new Metrics();
  const manager = new ControllerManager({ log: pino({ level: 'silent' }), metrics, resyncMs: 60_000, concurrency: 1 });
  const fakes: Record<string, FakeInformer<KubeObject>> = {};
  const watch = (resource: string) => manager.watch<KubeObject>(resource, (h) => (fakes[resource] = new FakeInformer(h)));
  return { metrics, manager, fakes, watch };
}

const counted = async (m: Metrics) => Object.fromEntries((await m.reconciles.get()).values.map((v) => [`${v.labels.controller}:${v.labels.result}`, v.value]));

test('nothing is queued until every cache synced; then each object once', async () => {
  const { manager, fakes, watch } = setup();
  const things = watch('things');
  watch('others');
  const seen: string[] = [];
  manager.add(controller('thing').for(things).run(async (key) => { seen.push(key); }));
  const started = manager.start();
  fakes.things!.put(obj({ name: 'a', namespace: 'ns' }));
  fakes.things!.sync.resolve();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, [], 'an event before the other cache synced queues nothing');
  assert.equal(manager.ready(), false);
  fakes.others!.sync.resolve();
  await started;
  await manager.idle();
  assert.deepEqual(seen, ['ns/a']);
  assert.equal(manager.ready(), true);
  await manager.stop();
});

test('the predicate drops a status-only change; a spec, label or deletion change passes', async () => {
  const { manager, fakes, watch } = setup();
  const things = watch('things');
  const seen: string[] = [];
  manager.add(controller('thing').for(things, { predicate: specOrMetadataChanged }).run(async (key) => { seen.push(key); }));
  fakes.things!.sync.resolve();
  await manager.start();
  fakes.things!.put(obj({ name: 'a', namespace: 'ns', generation: 1, resourceVersion: '1' }));
  await manager.idle();
  fakes.things!.put(obj({ name: 'a', namespace: 'ns', generation: 1, resourceVersion: '2' }));
  await manager.idle();
  assert.deepEqual(seen, ['ns/a'], 'the same generation and metadata (a status write) queues nothing');
  fakes.things!.put(obj({ name: 'a', namespace: 'ns', generation: 2, resourceVersion: '3' }));
  await manager.idle();
  fakes.things!.put(obj({ name: 'a', namespace: 'ns', generation: 2, resourceVersion: '4', labels: { x: 'y' } }));
  await manager.idle();
  fakes.things!.remove(obj({ name: 'a', namespace: 'ns', generation: 2 }));
  await manager.idle();
  assert.deepEqual(seen, ['ns/a', 'ns/a', 'ns/a', 'ns/a']);
  await manager.stop();
});

test('owned objects map to their owner by label; cluster-scoped owners by the label alone', async () => {
  const { manager, fakes, watch } = setup();
  const things = watch('things');
  const secrets = watch('secrets');
  const seen: string[] = [];
  manager.add(
    controller('thing').for(things).owns(secrets, byLabel('owner')).run(async (key) => { seen.push(`thing ${key}`); }),
    controller('domain').owns(secrets, byLabel('domain', { cluster: true, without: 'owner' })).run(async (key) => { seen.push(`domain ${key}`); }),
  );
  fakes.things!.sync.resolve();
  fakes.secrets!.sync.resolve();
  await manager.start();
  fakes.secrets!.put(obj({ name: 's1', namespace: 'ns', labels: { owner: 'a', domain: 'd' } }));
  fakes.secrets!.put(obj({ name: 's2', namespace: 'ns', labels: { domain: 'd' } }));
  fakes.secrets!.put(obj({ name: 's3', namespace: 'ns' }));
  await manager.idle();
  assert.deepEqual(seen.sort(), ['domain d', 'thing ns/a']);
  await manager.stop();
});

test('coalesced work waits the controller\'s delay and a burst makes one reconcile; idle() waits it out', async () => {
  const { manager, fakes, watch } = setup();
  const things = watch('things');
  const seen: Array<{ key: string; at: number }> = [];
  manager.add(controller('domain').watches(things, (o) => [o.metadata.labels!.domain!], { coalesced: true }).coalesce(200)
    .run(async (key) => { seen.push({ key, at: Date.now() }); }));
  fakes.things!.sync.resolve();
  await manager.start();
  const burst = Date.now();
  for (let i = 0; i < 20; i++) fakes.things!.put(obj({ name: `t${i}`, namespace: 'ns', labels: { domain: 'd' } }));
  await manager.idle();
  assert.equal(seen.length, 1, '20 changes, one reconcile');
  assert.ok(seen[0]!.at - burst >= 190, `waited the coalescing delay (${seen[0]!.at - burst} ms)`);
  await manager.stop();
});

test('every reconcile is counted by controller and outcome; the error policy decides a thrown error', async () => {
  const { manager, metrics } = setup();
  const kick = new Trigger();
  const store = { listeners: [] as Array<(n: string) => void>, onChange(l: (n: string) => void) { this.listeners.push(l); } };
  let n = 0;
  manager.add(
    controller('fixed').forKey('only').watches(kick, (k) => [k]).coalesce(50).run(async () => (++n === 2 ? { requeueAfter: 1, outcome: 'requeue' } : undefined)),
    controller('failing').watches(changesOf(store), (name) => [name]).run(
      async (key) => { throw new Error(key); },
      async (_key, err) => { if ((err as Error).message === 'settled') return { outcome: 'success' }; return {}; },
    ),
  );
  await manager.start();
  await manager.idle();
  kick.fire('only');
  await manager.idle();
  for (const l of store.listeners) { l('settled'); l('refused'); }
  await manager.idle();
  assert.deepEqual(await counted(metrics), { 'fixed:success': 2, 'fixed:requeue': 1, 'failing:success': 1, 'failing:error': 1 });
  await manager.stop();
});

test('a controller that reads no cache starts at once; one that does waits for every cache', async () => {
  const { manager, fakes, watch } = setup();
  const things = watch('things');
  const seen: string[] = [];
  const kick = new Trigger();
  manager.add(
    controller('certificates').forKey('only').watches(kick, (k) => [k]).run(async (key) => { seen.push(`certificates ${key}`); }),
    controller('thing').for(things).run(async (key) => { seen.push(`thing ${key}`); }),
  );
  fakes.things!.objects.set('ns/a', obj({ name: 'a', namespace: 'ns' }));
  const started = manager.start();
  await new Promise((r) => setImmediate(r));
  kick.fire('only');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen, ['certificates only', 'certificates only'], 'reconciled, and asked again, while a cache has not synced');
  fakes.things!.sync.resolve();
  await started;
  await manager.idle();
  assert.deepEqual(seen.slice(2), ['thing ns/a']);
  await manager.stop();
});

test('an object\'s own change goes ahead of one change fanning out to many keys, and of the first pass', async () => {
  const { manager, fakes, watch } = setup();
  const things = watch('things');
  const domains = watch('domains');
  const seen: string[] = [];
  const gate = Promise.withResolvers<void>();
  manager.add(controller('thing').for(things).watches(domains, () => things.list().map((t) => `ns/${t.metadata.name}`))
    .run(async (key) => { seen.push(key); if (key === 'ns/hold') await gate.promise; }));
  for (const name of ['hold', 'a', 'b']) fakes.things!.objects.set(`ns/${name}`, obj({ name, namespace: 'ns' }));
  const started = manager.start();
  fakes.things!.sync.resolve();
  fakes.domains!.sync.resolve();
  await started;
  // The first pass holds the one worker at 'hold'; a new object arrives behind the rest of it.
  fakes.things!.put(obj({ name: 'new', namespace: 'ns' }));
  fakes.domains!.put(obj({ name: 'd' }));
  fakes.things!.put(obj({ name: 'new2', namespace: 'ns' }));
  gate.resolve();
  await manager.idle();
  assert.deepEqual(seen.slice(0, 3), ['ns/hold', 'ns/new', 'ns/new2'], 'own changes first');
  assert.deepEqual(seen.slice(3).sort(), ['ns/a', 'ns/b', 'ns/hold'], 'then the first pass and the fan-out, each key once');
  await manager.stop();
});
