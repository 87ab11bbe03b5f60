// The webhook's PKI: what the CA and serving certificate look like, when the
// serving certificate is re-issued, and each step of a CA rotation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import {
  applyCAStep, type CAObservation, caSecretOf, createWebhookCA, DEFAULT_LIFETIMES, issueServingCertificate,
  loadWebhookCA, observeCA, observeServing, planCA, readCASecret, renewalTime, rotationConfig, SERVING_CHECKS, type ServingObservation,
  servingNames, servingNeedsIssuance, servingSecretOf, storedBundleOf, type WebhookLifetimes,
} from '../../../src/webhook-certificates/certificates.ts';
import { type CAState, trustedRootsPem } from '../../../src/ca/state.ts';
import { DEFAULT_BACKDATE_MS as BACKDATE_MS } from '../../../src/pki/validity.ts';
import { startsWithPem } from '../../support/pem.ts';

const HOUR = 3600_000;
const lt: WebhookLifetimes = { caMs: 300 * HOUR, servingMs: 30 * HOUR, renewAtFraction: 2 / 3, propagationMs: 60_000, graceMs: 120_000 };
const names = servingNames('agent-identity-operator-webhook', 'agent-identity-system', [], ['127.0.0.1']);
const pemCount = (pem: string) => (pem.match(/BEGIN CERTIFICATE/g) ?? []).length;

test('serving names: <service>.<namespace>.svc, its cluster.local form, then the extras', () => {
  assert.deepEqual(servingNames('svc', 'ns', ['extra.example'], ['127.0.0.1']), { dnsNames: ['svc.ns.svc', 'svc.ns.svc.cluster.local', 'extra.example'], ipAddresses: ['127.0.0.1'] });
});

test('the CA signs only the serving certificate, which is valid for the service name and the test IP', async () => {
  const now = new Date();
  const caPem = await createWebhookCA(now, lt.caMs);
  const ca = new X509Certificate(caPem.certificatePem);
  assert.equal(ca.ca, true);
  assert.match(ca.subject, /CN=agent-identity-operator webhook CA [0-9a-f]{8}/);
  const serving = await issueServingCertificate(await loadWebhookCA(caPem), names, now, lt.servingMs);
  const leaf = new X509Certificate(serving.certificatePem);
  assert.equal(pemCount(serving.certificatePem), 1, 'the leaf alone: the CA travels in caBundle');
  assert.equal(leaf.ca, false);
  assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey), 'signed by the CA');
  assert.equal(leaf.checkHost('agent-identity-operator-webhook.agent-identity-system.svc'), 'agent-identity-operator-webhook.agent-identity-system.svc');
  assert.ok(leaf.checkHost('agent-identity-operator-webhook.agent-identity-system.svc.cluster.local'));
  assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(leaf.checkHost('evil.example'), undefined);
  assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'serverAuth only');
  assert.equal(new Date(leaf.validFrom).getTime(), Math.floor((now.getTime() - BACKDATE_MS) / 1000) * 1000);
  assert.match(serving.privateKeyPem, startsWithPem('PRIVATE KEY'));
});

test('a serving certificate never outlives its CA', async () => {
  const now = new Date();
  const caPem = await createWebhookCA(now, 2 * HOUR);
  const serving = await issueServingCertificate(await loadWebhookCA(caPem), names, now, 30 * HOUR);
  assert.equal(serving.notAfter.getTime(), new Date(new X509Certificate(caPem.certificatePem).validTo).getTime());
});

test('renewal is due 2/3 of the way from issuance (not from the back-dated notBefore) to expiry', () => {
  const issued = new Date('2026-01-01T00:00:00Z');
  const v = { notBefore: new Date(issued.getTime() - BACKDATE_MS), notAfter: new Date(issued.getTime() + 30 * HOUR) };
  assert.equal(renewalTime(v, 2 / 3).toISOString(), '2026-01-01T20:00:00.000Z');
});

// --- serving checks

const t0 = new Date('2026-01-01T00:00:00Z');
const goodServing: ServingObservation = {
  exists: true, missingKeys: [], keyMatches: true,
  certificate: { notBefore: new Date(t0.getTime() - BACKDATE_MS), notAfter: new Date(t0.getTime() + 30 * HOUR), ...names, serialNumber: 'ab', issuedByActive: true },
};
const cert = (over: Partial<NonNullable<ServingObservation['certificate']>>) => ({ ...goodServing, certificate: { ...goodServing.certificate!, ...over } });

test('a current serving certificate needs nothing', () => {
  assert.equal(servingNeedsIssuance(goodServing, names, new Date(t0.getTime() + HOUR), lt), undefined);
});

const servingCases: Array<[string, ServingObservation, Date, string]> = [
  ['no Secret', { exists: false, missingKeys: ['tls.crt', 'tls.key'] }, t0, 'SecretDoesNotExist'],
  ['no tls.key', { exists: true, missingKeys: ['tls.key'] }, t0, 'SecretIsMissingData'],
  ['garbage tls.crt', { exists: true, missingKeys: [], certificateError: 'no PEM CERTIFICATE block found' }, t0, 'CertificateUnparsable'],
  ['garbage tls.key', { ...goodServing, keyMatches: undefined, keyError: 'no PEM private key block found' }, t0, 'KeyUnparsable'],
  ['key of another certificate', { ...goodServing, keyMatches: false }, t0, 'KeyMismatch'],
  ['another service name', cert({ dnsNames: ['old.agent-identity-system.svc'] }), t0, 'NamesMismatch'],
  ['IP SAN missing', cert({ ipAddresses: [] }), t0, 'NamesMismatch'],
  ['issued by the previous CA', cert({ issuedByActive: false }), t0, 'IssuerNotActiveCA'],
  ['expired', goodServing, new Date(t0.getTime() + 31 * HOUR), 'Expired'],
  ['2/3 of its life', goodServing, new Date(t0.getTime() + 20 * HOUR), 'Renewing'],
];
for (const [name, o, now, reason] of servingCases) {
  test(`serving certificate: ${name} → ${reason}`, () => {
    const v = servingNeedsIssuance(o, names, now, lt);
    assert.equal(v?.reason, reason);
    assert.ok(v!.message.length > 10);
  });
}

test('serving checks are an ordered list, Secret first', () => {
  assert.equal(SERVING_CHECKS[0]!.name, 'secretDoesNotExist');
  assert.equal(SERVING_CHECKS.at(-1)!.name, 'renewing');
});

// --- CA plan

const times = (issuedHoursAgo: number, lifetimeHours = 300) => ({
  notBefore: new Date(t0.getTime() - issuedHoursAgo * HOUR - BACKDATE_MS), notAfter: new Date(t0.getTime() + (lifetimeHours - issuedHoursAgo) * HOUR),
});
const cfg = rotationConfig(lt, 10_000);
const steady: CAObservation = { active: times(1), bundleIntact: true, bundleCopies: { total: 3, updated: 3 }, serving: { issuedByActive: true, issuedAt: t0 } };
const at = (ms: number) => new Date(t0.getTime() + ms);
const waitsUntil = (step: ReturnType<typeof planCA>, now: Date) => (step.kind === 'Wait' ? now.getTime() + step.afterMs! : undefined);

test('CA: current → nothing, next look at 2/3 of its life', () => {
  const step = planCA(steady, t0, cfg);
  assert.equal(step.kind, 'Wait');
  assert.equal(waitsUntil(step, t0), t0.getTime() + 199 * HOUR);
});

test('CA: at 2/3 of its life a new CA is published next to it', () => {
  assert.equal(planCA({ ...steady, active: times(200) }, t0, cfg).kind, 'StartRotation');
});

test('CA: publishing waits until every configuration carries the new CA, then for the propagation delay', () => {
  const publishing: CAObservation = { ...steady, rotation: { phase: 'PublishingRoot', phaseStartedAt: t0 } };
  assert.equal(planCA({ ...publishing, bundleCopies: { total: 3, updated: 1 } }, at(10 * 60_000), cfg).kind, 'Wait');
  const early = planCA(publishing, at(30_000), cfg);
  assert.equal(early.kind, 'Wait');
  assert.equal(waitsUntil(early, at(30_000)), at(60_000).getTime());
  assert.equal(planCA(publishing, at(60_000), cfg).kind, 'SwitchSigner');
});

test('CA: the old CA leaves caBundle only after the serving certificate moved and the grace period passed', () => {
  const retiring: CAObservation = { ...steady, active: times(0), rotation: { phase: 'ReissuingLeaves', phaseStartedAt: t0 }, serving: { issuedByActive: false, issuedAt: at(-HOUR) } };
  assert.equal(planCA(retiring, at(HOUR), cfg).kind, 'Wait', 'serving certificate still from the old CA');
  const moved = { ...retiring, serving: { issuedByActive: true, issuedAt: at(5_000) } };
  const waiting = planCA(moved, at(60_000), cfg);
  assert.equal(waiting.kind, 'Wait');
  assert.equal(waitsUntil(waiting, at(60_000)), at(125_000).getTime(), 'grace counts from the re-issue');
  assert.equal(planCA(moved, at(125_000), cfg).kind, 'FinishRotation');
});

test('CA: a ca.crt that lost the active CA is repaired first; an expired CA is replaced at once', () => {
  assert.equal(planCA({ ...steady, bundleIntact: false }, t0, cfg).kind, 'RepairBundle');
  assert.equal(planCA({ ...steady, bundleIntact: false, active: times(301) }, t0, cfg).kind, 'RepairBundle');
  assert.equal(planCA({ ...steady, active: times(301) }, t0, cfg).kind, 'ReplaceRoot');
});

test('CA: the stored ca.crt is intact only when it holds the retiring, active and incoming CAs', async () => {
  const a = await createWebhookCA(new Date(), lt.caMs);
  const x = await createWebhookCA(new Date(), lt.caMs);
  const state: CAState = { root: a };
  const copies = { total: 0, updated: 0 };
  const serving: ServingObservation = { exists: false, missingKeys: [] };
  assert.equal(observeCA(state, a.certificatePem, copies, serving).bundleIntact, true);
  // ca.crt that lost the active CA: what it still holds is kept as retiring, and the repair adds the active CA back.
  const written = caSecretOf('ns', 'ca', state);
  const broken = { ...written, data: { ...written.data, 'ca.crt': Buffer.from(x.certificatePem).toString('base64') } };
  const read = readCASecret(broken)!;
  assert.equal(observeCA(read, storedBundleOf(broken), copies, serving).bundleIntact, false);
  assert.equal(trustedRootsPem(await applyCAStep(read, { kind: 'RepairBundle' }, new Date(), lt)), x.certificatePem + a.certificatePem);
  assert.equal(observeCA(state, 'junk', copies, serving).bundleIntact, false, 'an unreadable ca.crt is repaired rather than trusted');
});

test('default lifetimes: a year of CA, a month of serving certificate, renewal at 2/3', () => {
  assert.equal(DEFAULT_LIFETIMES.caMs, 365 * 24 * HOUR);
  assert.equal(DEFAULT_LIFETIMES.servingMs, 30 * 24 * HOUR);
  assert.equal(DEFAULT_LIFETIMES.renewAtFraction, 2 / 3);
});

// --- a whole rotation with real certificates

test('a rotation, step by step: both CAs in ca.crt until the serving certificate moved, then only the new one', async () => {
  const start = new Date();
  let state: CAState = { root: await createWebhookCA(start, lt.caMs) };
  const oldCA = state.root!.certificatePem;
  // The serving Secret, observed against whatever CA is active at the time.
  let servingSecret = servingSecretOf('ns', 'tls', await issueServingCertificate(await loadWebhookCA(state.root!), names, start, lt.servingMs));
  const issue = async (s: CAState, now: Date) => {
    servingSecret = servingSecretOf('ns', 'tls', await issueServingCertificate(await loadWebhookCA(s.root!), names, now, lt.servingMs));
    return observeServing(servingSecret, await loadWebhookCA(s.root!));
  };
  let serving = await observeServing(servingSecret, await loadWebhookCA(state.root!));
  // Each step goes through the Secret, as the manager's passes do; every webhook carries ca.crt.
  const plan = async (now: Date) => {
    const secret = caSecretOf('ns', 'ca', state);
    state = readCASecret(secret)!;
    return planCA(observeCA(state, storedBundleOf(secret), { total: 2, updated: 2 }, serving), now, cfg);
  };

  const due = new Date(start.getTime() + 200 * HOUR + BACKDATE_MS);
  const publish = await plan(due);
  assert.equal(publish.kind, 'StartRotation');
  state = await applyCAStep(state, publish, due, lt);
  assert.equal(state.root!.certificatePem, oldCA, 'the old CA still signs while the new one propagates');
  assert.equal(pemCount(trustedRootsPem(state)), 2);

  const promoteAt = new Date(due.getTime() + lt.propagationMs);
  const promote = await plan(promoteAt);
  assert.equal(promote.kind, 'SwitchSigner');
  state = await applyCAStep(state, promote, promoteAt, lt);
  assert.notEqual(state.root!.certificatePem, oldCA);
  assert.equal(state.incoming, undefined);
  assert.equal(pemCount(trustedRootsPem(state)), 2, 'both CAs stay trusted');
  serving = await observeServing(servingSecret, await loadWebhookCA(state.root!));
  assert.equal(servingNeedsIssuance(serving, names, promoteAt, lt)?.reason, 'IssuerNotActiveCA', 'the serving certificate must move to the new CA');
  assert.equal((await plan(new Date(promoteAt.getTime() + 10 * lt.graceMs))).kind, 'Wait', 'not while the serving certificate is from the old CA');

  serving = await issue(state, promoteAt);
  assert.equal(serving.certificate?.issuedByActive, true);
  // Grace counts from the later of the promotion and the re-issue (notBefore + BACKDATE_MS, whole seconds): here the promotion.
  const retireAt = new Date(promoteAt.getTime() + lt.graceMs);
  assert.equal((await plan(new Date(retireAt.getTime() - 1000))).kind, 'Wait');
  const retire = await plan(retireAt);
  assert.equal(retire.kind, 'FinishRotation');
  state = await applyCAStep(state, retire, retireAt, lt);
  assert.equal(trustedRootsPem(state), state.root!.certificatePem, 'only the new CA is left');
});

test('the CA Secret round-trips, including the incoming CA and the phase start', async () => {
  const a = await createWebhookCA(new Date(), lt.caMs);
  const b = await createWebhookCA(new Date(), lt.caMs);
  const started = '2026-01-01T00:00:00.000Z';
  const state: CAState = { root: a, incoming: b, rotation: { phase: 'PublishingRoot', reason: 'Scheduled', startedAt: started, phaseStartedAt: started } };
  const secret = caSecretOf('agent-identity-system', 'agent-identity-webhook-root', state);
  assert.equal(secret.metadata.labels?.['app.kubernetes.io/managed-by'], 'agent-identity-operator');
  assert.deepEqual(Object.keys(secret.data!).sort(), ['ca.crt', 'incoming.crt', 'incoming.key', 'tls.crt', 'tls.key']);
  assert.equal(Buffer.from(secret.data!['ca.crt']!, 'base64').toString(), a.certificatePem + b.certificatePem);
  assert.deepEqual(secret.metadata.annotations, { 'agentidentity.dev/webhook-ca-phase-started-at': started });
  const read = readCASecret(secret)!;
  assert.deepEqual({ ...read, intermediate: undefined, retiringPem: undefined, lastRotationRequest: undefined }, { ...state, intermediate: undefined, retiringPem: undefined, lastRotationRequest: undefined });
  assert.equal(readCASecret({ metadata: {}, data: { 'tls.crt': secret.data!['tls.crt']! } }), undefined, 'no key: not a usable CA (and never silently replaced)');
});

test('observing the serving Secret: issuer, key match, unparsable content', async () => {
  const now = new Date();
  const ca = await loadWebhookCA(await createWebhookCA(now, lt.caMs));
  const other = await loadWebhookCA(await createWebhookCA(now, lt.caMs));
  const good = await issueServingCertificate(ca, names, now, lt.servingMs);
  const stranger = await issueServingCertificate(other, names, now, lt.servingMs);
  assert.equal((await observeServing(servingSecretOf('n', 's', good), ca)).certificate?.issuedByActive, true);
  assert.equal((await observeServing(servingSecretOf('n', 's', stranger), ca)).certificate?.issuedByActive, false);
  assert.equal((await observeServing(servingSecretOf('n', 's', { ...good, privateKeyPem: stranger.privateKeyPem }), ca)).keyMatches, false);
  const broken = await observeServing({ metadata: {}, data: { 'tls.crt': Buffer.from('junk').toString('base64'), 'tls.key': Buffer.from('junk').toString('base64') } }, ca);
  assert.equal(servingNeedsIssuance(broken, names, now, lt)?.reason, 'CertificateUnparsable');
  assert.doesNotMatch(JSON.stringify(broken), /junk/, 'the observation never quotes the Secret');
  assert.deepEqual((await observeServing(undefined, ca)).exists, false);
});
