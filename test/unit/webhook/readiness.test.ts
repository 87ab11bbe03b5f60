// When a replica is Ready: its served certificate judged against each
// webhook's caBundle, and the replica's verdict from its parts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWebhookCA, DEFAULT_LIFETIMES, issueServingCertificate, loadWebhookCA, servingNames } from '../../../src/webhook-certificates/certificates.ts';
import { READY, notReady, replicaReadiness, servingTrusted, type CaBundleOf } from '../../../src/webhook/readiness.ts';

const HOUR = 3600_000;
const names = servingNames('agent-identity-operator-webhook', 'agent-identity-system', [], ['127.0.0.1']);
const b64 = (pem: string) => Buffer.from(pem).toString('base64');
const webhooks = (...bundles: (string | undefined)[]): CaBundleOf[] => bundles.map((caBundle, i) => ({ webhook: `Kind/agent-identity-operator: hook-${i}`, caBundle }));

async function pki(now: Date) {
  const oldCA = await createWebhookCA(now, 300 * HOUR);
  const newCA = await createWebhookCA(now, 300 * HOUR);
  const servedByOld = (await issueServingCertificate(await loadWebhookCA(oldCA), names, now, 30 * HOUR)).certificatePem;
  const servedByNew = (await issueServingCertificate(await loadWebhookCA(newCA), names, now, 30 * HOUR)).certificatePem;
  return { oldCA: oldCA.certificatePem, newCA: newCA.certificatePem, servedByOld, servedByNew };
}

test('ready only when every webhook\'s caBundle verifies the served certificate, with the reason when not', async () => {
  const now = new Date();
  const p = await pki(now);
  assert.deepEqual(await servingTrusted(p.servedByOld, webhooks(b64(p.oldCA), b64(p.oldCA)), now), READY);
  assert.deepEqual(await servingTrusted(undefined, webhooks(b64(p.oldCA)), now), notReady('the webhook has no serving certificate yet'));
  assert.deepEqual(await servingTrusted(p.servedByOld, webhooks(b64(p.oldCA), undefined), now), notReady('Kind/agent-identity-operator: hook-1: caBundle is empty'));
  assert.deepEqual(await servingTrusted(p.servedByOld, webhooks(b64('not a certificate')), now), notReady('Kind/agent-identity-operator: hook-0: caBundle cannot be parsed'));
  const foreign = await servingTrusted(p.servedByNew, webhooks(b64(p.oldCA)), now);
  assert.equal(foreign.ready, false);
  assert.match(foreign.ready ? '' : foreign.reason, /^Kind\/agent-identity-operator: hook-0: caBundle does not verify the serving certificate: .* not a root in the bundle$/);
});

test('through a CA rotation, old and new certificates both verify while both CAs are in caBundle', async () => {
  const now = new Date();
  const p = await pki(now);
  const both = b64(p.oldCA + p.newCA);
  // Publishing: the new CA joined, the old certificate is still served.
  assert.deepEqual(await servingTrusted(p.servedByOld, webhooks(both, both), now), READY);
  // Re-issued under the new CA, the old CA still in caBundle.
  assert.deepEqual(await servingTrusted(p.servedByNew, webhooks(both, both), now), READY);
  // The old CA retired: only a replica still serving the old certificate is out (the grace period exists so none is).
  assert.deepEqual(await servingTrusted(p.servedByNew, webhooks(b64(p.newCA)), now), READY);
  assert.equal((await servingTrusted(p.servedByOld, webhooks(b64(p.newCA)), now)).ready, false);
  // The poll a replica reads both with is far shorter than the grace period that ordering relies on.
  assert.ok(DEFAULT_LIFETIMES.graceMs >= 10 * 10_000, 'grace covers ten polls of 10 s');
});

test('an expired served certificate is not ready, even under the right CA', async () => {
  const now = new Date();
  const p = await pki(now);
  const later = new Date(now.getTime() + 31 * HOUR);
  const r = await servingTrusted(p.servedByOld, webhooks(b64(p.oldCA)), later);
  assert.equal(r.ready, false);
  assert.match(r.ready ? '' : r.reason, /expired at/);
});

test('without any webhook configuration nothing calls the webhook: a certificate is enough', async () => {
  const now = new Date();
  const p = await pki(now);
  assert.deepEqual(await servingTrusted(p.servedByOld, [], now), READY);
  assert.equal((await servingTrusted(undefined, [], now)).ready, false);
});

test('a replica: shutting down first, then the webhook, then (leader only) the caches', () => {
  const webhookDown = notReady('the webhook has no serving certificate yet');
  const table: Array<[Parameters<typeof replicaReadiness>[0], ReturnType<typeof replicaReadiness>]> = [
    [{ shuttingDown: false, webhook: READY, cachesSynced: true }, READY],
    [{ shuttingDown: false, webhook: READY, cachesSynced: undefined }, READY],
    [{ shuttingDown: false, webhook: webhookDown, cachesSynced: undefined }, webhookDown],
    [{ shuttingDown: false, webhook: webhookDown, cachesSynced: false }, webhookDown],
    [{ shuttingDown: false, webhook: READY, cachesSynced: false }, notReady('caches not synced')],
    [{ shuttingDown: false, webhook: undefined, cachesSynced: false }, notReady('caches not synced')],
    [{ shuttingDown: false, webhook: undefined, cachesSynced: undefined }, READY],
    [{ shuttingDown: true, webhook: READY, cachesSynced: true }, notReady('shutting down')],
  ];
  for (const [state, want] of table) assert.deepEqual(replicaReadiness(state), want, JSON.stringify(state));
});
