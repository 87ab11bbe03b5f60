// The manager's pass over in-memory fakes: what it reads, what it decides,
// what it writes — fresh start, steady state, a whole CA rotation, and reads
// that fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import pino from 'pino';
import type { Secret } from '../../../src/api/types.ts';
import { KubeError } from '../../../src/kube/errors.ts';
import { type CertificateKube, certificatesPass, type PassOptions, type WebhookCertificatesStatus } from '../../../src/webhook-certificates/reconciler.ts';
import { startWebhookCertificates } from '../../../src/webhook-certificates/controller.ts';
import { servingNames, type WebhookLifetimes } from '../../../src/webhook-certificates/certificates.ts';
import type { WebhookConfiguration, WebhookConfigurationKind } from '../../../src/kube/client.ts';

const lt: WebhookLifetimes = { caMs: 24_000_000, servingMs: 9_000_000, renewAtFraction: 2 / 3, propagationMs: 60_000, graceMs: 120_000 };
const notFound = () => new KubeError(404, 'NotFound', 'not found');

class FakeKube implements CertificateKube {
  secrets = new Map<string, Secret>();
  configs = new Map<WebhookConfigurationKind, WebhookConfiguration>();
  writes: string[] = [];
  readError?: KubeError;
  /** Answers the next create of this Secret with a 409, as when another leader created it first. */
  createConflict?: string;
  #rv = 0;
  constructor() {
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'] as const) {
      this.configs.set(kind, { metadata: { name: 'cfg' }, webhooks: [{ name: `${kind}.w`, clientConfig: {} }] });
    }
  }
  async getSecret(_ns: string, name: string): Promise<Secret> {
    if (this.readError) throw this.readError;
    const s = this.secrets.get(name);
    if (!s) throw notFound();
    return structuredClone(s);
  }
  async createSecret(s: Secret): Promise<Secret> {
    if (this.createConflict === s.metadata.name) {
      this.createConflict = undefined;
      throw new KubeError(409, 'AlreadyExists', 'secrets "tls" already exists');
    }
    if (this.secrets.has(s.metadata.name!)) throw new KubeError(409, 'AlreadyExists', 'exists');
    this.writes.push(`create ${s.metadata.name}`);
    return this.#store(s);
  }
  async replaceSecret(s: Secret): Promise<Secret> {
    if (this.secrets.get(s.metadata.name!)?.metadata.resourceVersion !== s.metadata.resourceVersion) throw new KubeError(409, 'Conflict', 'stale');
    this.writes.push(`replace ${s.metadata.name}`);
    return this.#store(s);
  }
  async getWebhookConfiguration(kind: WebhookConfigurationKind): Promise<WebhookConfiguration | undefined> {
    return structuredClone(this.configs.get(kind));
  }
  /** JSON Patch as the API server applies it: in order, all or nothing, and a failed `test` answers 422. */
  async patchWebhookConfiguration(kind: WebhookConfigurationKind, _name: string, ops: Array<{ op: string; path: string; value?: unknown }>): Promise<unknown> {
    const patched = structuredClone(this.configs.get(kind)!) as unknown as Record<string, unknown>;
    for (const op of ops) {
      const keys = op.path.split('/').slice(1).map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~'));
      const last = keys.pop()!;
      const parent = keys.reduce<Record<string, unknown> | undefined>((o, k) => o?.[k] as Record<string, unknown> | undefined, patched);
      if (!parent) throw new KubeError(422, 'Invalid', `the server rejected our request due to an error in our request: ${op.path}: no such path`);
      if (op.op === 'test') {
        if (!isDeepStrictEqual(parent[last], op.value)) throw new KubeError(422, 'Invalid', `the server rejected our request due to an error in our request: testing value ${op.path} failed`);
      } else if (op.op === 'add' || op.op === 'replace') {
        parent[last] = op.value;
      } else {
        throw new Error(`the fake does not apply "${op.op}"`);
      }
    }
    this.writes.push(`patch ${kind}`);
    this.configs.set(kind, patched as unknown as WebhookConfiguration);
    return {};
  }
  #store(s: Secret): Secret {
    const stored = { ...structuredClone(s), metadata: { ...s.metadata, resourceVersion: String(++this.#rv) } };
    this.secrets.set(s.metadata.name!, stored);
    return structuredClone(stored);
  }
  caBundles(): string[] {
    return [...this.configs.values()].map((c) => Buffer.from(c.webhooks![0]!.clientConfig.caBundle ?? '', 'base64').toString()).map((pem) => String((pem.match(/BEGIN CERTIFICATE/g) ?? []).length));
  }
}

function setup(start = new Date('2026-01-01T00:00:00Z')) {
  const kube = new FakeKube();
  let now = start;
  const status: WebhookCertificatesStatus = { configurationsFound: [], passes: 0 };
  const o: PassOptions = {
    kube, namespace: 'ns', caName: 'ca', tlsName: 'tls', configName: 'cfg',
    names: servingNames('svc', 'ns'), lifetimes: lt, resyncMs: 60_000,
    log: pino({ level: 'silent' }), now: () => now, status,
  };
  const pass = async () => { kube.writes = []; return certificatesPass(o); };
  return { kube, status, pass, advance: (ms: number) => { now = new Date(now.getTime() + ms); } };
}

test('fresh start: the CA is generated after the 404, then caBundle, then the serving certificate', async () => {
  const { kube, pass } = setup();
  assert.equal(await pass(), 0, 'something changed: look again at once');
  assert.deepEqual(kube.writes, ['create ca', 'patch MutatingWebhookConfiguration', 'patch ValidatingWebhookConfiguration', 'create tls']);
  assert.deepEqual(kube.caBundles(), ['1', '1']);
});

test('steady state writes nothing and sleeps until the resync period', async () => {
  const { kube, pass } = setup();
  await pass();
  assert.equal(await pass(), 60_000);
  assert.deepEqual(kube.writes, []);
});

for (const code of [403, 500, 0]) {
  test(`a CA Secret read that fails with ${code} never generates a CA`, async () => {
    const { kube, pass } = setup();
    kube.readError = new KubeError(code, 'Failure', 'nope');
    await assert.rejects(pass(), /^Error: cannot read webhook CA Secret ns\/ca: nope/);
    assert.deepEqual(kube.writes, []);
    assert.equal(kube.secrets.size, 0);
  });
}

test('a Secret without a CA key is reported, never replaced', async () => {
  const { kube, pass } = setup();
  kube.secrets.set('ca', { metadata: { name: 'ca', resourceVersion: '1' }, data: { 'tls.crt': 'eA==' } });
  await assert.rejects(pass(), /holds no webhook CA/);
  assert.deepEqual(kube.writes, []);
});

test('a rotation walks the phases in order, with the right waits', async () => {
  const { kube, pass, advance, status } = setup();
  await pass();
  await pass();
  const step = async () => { const next = await pass(); return { next, writes: kube.writes, bundles: kube.caBundles(), rotation: status.rotation }; };

  // 2/3 of the CA's life: the serving certificate (shorter-lived) renews along the way; go to the CA's rotation time.
  advance(16_000_000);
  let r = await step();
  assert.deepEqual(r.writes.slice(0, 3), ['replace ca', 'patch MutatingWebhookConfiguration', 'patch ValidatingWebhookConfiguration'], 'StartRotation publishes the new CA');
  assert.deepEqual(r.bundles, ['2', '2']);
  assert.equal(r.rotation, 'Publishing');

  r = await step();
  assert.deepEqual(r.writes, []);
  assert.equal(r.next, 60_000, 'waits out the propagation delay');

  advance(60_000);
  r = await step();
  assert.deepEqual(r.writes, ['replace ca', 'replace tls'], 'SwitchSigner; the serving certificate moves to the new CA at once');
  assert.deepEqual(r.bundles, ['2', '2'], 'caBundle unchanged: both CAs stay trusted');
  assert.equal(r.rotation, 'Retiring');

  r = await step();
  assert.deepEqual(r.writes, []);
  assert.equal(r.next, 60_000, 'grace (120 s) is capped by the resync period');
  advance(119_000);
  r = await step();
  assert.deepEqual(r.writes, []);
  assert.equal(r.next, 1_000);

  advance(1_000);
  r = await step();
  assert.deepEqual(r.writes, ['replace ca', 'patch MutatingWebhookConfiguration', 'patch ValidatingWebhookConfiguration'], 'FinishRotation: the old CA leaves caBundle');
  assert.deepEqual(r.bundles, ['1', '1']);
  assert.equal(r.rotation, undefined);
  r = await step();
  assert.deepEqual(r.writes, [], 'steady again');
});

test('publishing waits for every configuration to carry the new CA', async () => {
  const { kube, pass, advance } = setup();
  await pass();
  advance(16_000_000);
  // The validating configuration's patch is lost (say, the configuration was re-applied by the chart).
  const patch = kube.patchWebhookConfiguration.bind(kube);
  kube.patchWebhookConfiguration = async (kind, name, ops) => (kind === 'ValidatingWebhookConfiguration' ? {} : patch(kind, name, ops));
  await pass();
  advance(10 * 60_000);
  await pass();
  assert.ok(!kube.writes.includes('replace ca'), 'no SwitchSigner while a caBundle lacks the new CA');
  kube.patchWebhookConfiguration = patch;
  await pass();
  await pass();
  assert.ok(kube.writes.includes('replace ca'), 'switches once every copy carries it');
});

test('mid-rotation, the CA Secret keeps the format the webhook always wrote: its keys, one annotation, its labels', async () => {
  const { kube, pass, advance } = setup();
  await pass();
  advance(16_000_000);
  await pass();
  const started = kube.secrets.get('ca')!;
  assert.deepEqual(Object.keys(started.data!).sort(), ['ca.crt', 'incoming.crt', 'incoming.key', 'tls.crt', 'tls.key']);
  assert.deepEqual(Object.keys(started.metadata.annotations!), ['agentidentity.dev/webhook-ca-phase-started-at']);
  assert.deepEqual(started.metadata.labels, { 'app.kubernetes.io/managed-by': 'agent-identity-operator', 'app.kubernetes.io/component': 'webhook' });
});

test('a caBundle patch that races a change to the configuration fails its test op (422), writes nothing, and the next pass publishes', async () => {
  const { kube, pass } = setup();
  // The chart re-applies the mutating configuration with a new webhook first, between the pass's read and its patch.
  const get = kube.getWebhookConfiguration.bind(kube);
  kube.getWebhookConfiguration = async (kind) => {
    const read = await get(kind);
    if (kind === 'MutatingWebhookConfiguration') kube.configs.get(kind)!.webhooks!.unshift({ name: 'inserted.w', clientConfig: {} });
    return read;
  };
  await assert.rejects(pass(), (err: KubeError) => err.code === 422, 'index 0 is no longer the webhook the pass read');
  const mutating = () => kube.configs.get('MutatingWebhookConfiguration')!.webhooks!;
  assert.deepEqual(mutating().map((w) => w.clientConfig.caBundle), [undefined, undefined], 'no caBundle written at an index that now names another webhook');
  kube.getWebhookConfiguration = get;
  await pass();
  assert.deepEqual(mutating().map((w) => w.name), ['inserted.w', 'MutatingWebhookConfiguration.w']);
  assert.ok(mutating().every((w) => w.clientConfig.caBundle), 'both webhooks carry the CA after the next pass');
  assert.deepEqual(kube.caBundles(), ['1', '1']);
});

test('a write conflict is no failure: the pass runs again at once, with no error reported or logged above debug', async () => {
  const kube = new FakeKube();
  kube.createConflict = 'tls';
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line)); } });
  // Resolves once a pass has answered the start-up's request: after the conflict, the pass that follows it.
  const manager = await startWebhookCertificates({ kube, kubeConfig: undefined as never, namespace: 'ns', caSecretName: 'ca', tlsSecretName: 'tls', webhookConfigurationName: 'cfg', logger, lifetimes: lt });
  try {
    assert.ok(kube.secrets.has('tls'), 'the serving certificate was written by the next pass');
    assert.equal(manager.status().lastError, undefined);
    assert.equal(manager.status().passes, 2);
    assert.deepEqual(lines.filter((l) => l.level >= 40).map((l) => l.msg), [], 'no warning');
  } finally {
    await manager.stop();
  }
});
