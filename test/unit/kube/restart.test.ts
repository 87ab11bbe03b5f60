import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planRestart, crdOf, HEALTHY, RESTART_BACKOFF, type RestartState } from '../../../src/kube/restart.ts';
import { KubeError } from '../../../src/kube/errors.ts';

const CRD_PATH = '/apis/agentidentity.dev/v1alpha1/agentidentities';
const where = { path: CRD_PATH, server: 'https://10.0.0.1:6443' };
const quick = { ranMs: 5, gotEvents: false };
const noJitter = () => 0.5;
const notFound = new KubeError(404, 'NotFound', 'the server could not find the requested resource');
const refused = new KubeError(0, 'ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:6443');

/** Feeds the same failure n times, as an outage does. */
function outage(n: number, err: unknown, attempt = quick, path = CRD_PATH) {
  let state: RestartState = HEALTHY;
  return Array.from({ length: n }, () => {
    const r = planRestart(state, err, attempt, { ...where, path }, RESTART_BACKOFF, noJitter);
    state = r.state;
    return r;
  });
}

test('delays double from 500 ms to a 30 s cap while the outage lasts', () => {
  assert.deepEqual(outage(9, refused).map((r) => r.delayMs), [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
});

test('jitter moves each delay by at most 20% and never past the cap', () => {
  for (const [failures, random, want] of [
    [0, () => 0, 400],
    [0, () => 0.999999, 600],
    [6, () => 0.999999, 30_000],
    [6, () => 0, 24_000],
    [20, () => 0, 24_000],
  ] as const) {
    assert.equal(planRestart({ failures }, refused, quick, where, RESTART_BACKOFF, random).delayMs, want);
  }
});

test('the first failure of an outage is a warning, the retries that follow are debug', () => {
  assert.deepEqual(outage(4, notFound).map((r) => r.level), ['warn', 'debug', 'debug', 'debug']);
});

test('a new cause in the same outage is announced again', () => {
  const first = planRestart(HEALTHY, refused, quick, where, RESTART_BACKOFF, noJitter);
  const next = planRestart(first.state, notFound, quick, where, RESTART_BACKOFF, noJitter);
  assert.equal(next.level, 'warn');
  assert.equal(next.cause, 'NotInstalled');
  assert.equal(next.delayMs, 1000, 'the backoff carries on: the API server is still not serving the resource');
});

test('a watch that stayed healthy resets the backoff and starts a new, announced outage', () => {
  const deep: RestartState = { failures: 8, announced: 'Unreachable' };
  for (const [attempt, wantDelay, wantLevel] of [
    [{ ranMs: 29_999, gotEvents: false }, 30_000, 'debug'],
    [{ ranMs: 30_000, gotEvents: false }, 500, 'warn'],
    [{ ranMs: 10, gotEvents: true }, 500, 'warn'],
  ] as const) {
    const r = planRestart(deep, refused, attempt, where, RESTART_BACKOFF, noJitter);
    assert.deepEqual([r.delayMs, r.level], [wantDelay, wantLevel], JSON.stringify(attempt));
  }
});

test('each cause has a line that says what to do', () => {
  for (const [err, path, cause, message] of [
    [notFound, CRD_PATH, 'NotInstalled', 'CRD agentidentities.agentidentity.dev is not installed: run `make install` or apply crds/ (retrying with backoff)'],
    [refused, CRD_PATH, 'Unreachable', 'API server unreachable at https://10.0.0.1:6443: ECONNREFUSED; retrying in 0.5s'],
    [new KubeError(0, 'UND_ERR_SOCKET', 'other side closed'), '/api/v1/secrets', 'Unreachable', 'API server unreachable at https://10.0.0.1:6443: UND_ERR_SOCKET; retrying in 0.5s'],
    [new KubeError(403, 'Forbidden', 'secrets is forbidden'), '/api/v1/secrets', 'Forbidden', 'not allowed to list and watch /api/v1/secrets (HTTP 403: secrets is forbidden): check the operator\'s credentials and RBAC; retrying in 0.5s'],
    [new KubeError(404, 'NotFound', 'not found'), '/api/v1/secrets', 'Failed', 'watch of /api/v1/secrets failed (HTTP 404: not found); retrying in 0.5s'],
    [new KubeError(500, 'InternalError', 'etcd timeout'), CRD_PATH, 'Failed', `watch of ${CRD_PATH} failed (HTTP 500: etcd timeout); retrying in 0.5s`],
  ] as const) {
    const r = planRestart(HEALTHY, err, quick, { ...where, path }, RESTART_BACKOFF, noJitter);
    assert.deepEqual([r.cause, r.message], [cause, message]);
  }
});

test('the retry delay in the message is the one the informer waits', () => {
  const r = outage(7, refused).at(-1)!;
  assert.equal(r.delayMs, 30_000);
  assert.match(r.message, /retrying in 30s$/);
});

test('crdOf names the CRD behind a path under /apis/, and nothing for core resources', () => {
  for (const [path, want] of [
    ['/apis/agentidentity.dev/v1alpha1/trustdomains', 'trustdomains.agentidentity.dev'],
    ['/apis/agentidentity.dev/v1alpha1/namespaces/agents/agentidentities', 'agentidentities.agentidentity.dev'],
    ['/api/v1/configmaps', undefined],
  ] as const) {
    assert.equal(crdOf(path), want, path);
  }
});
