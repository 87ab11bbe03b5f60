import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CoreV1Event } from '@kubernetes/client-node';
import { EventRecorder } from '../../../src/kube/events.ts';

const target = (uid: string) => ({ apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: `n-${uid}`, namespace: 'team', uid } });

/** An API whose writes finish only when the test lets them. */
function slowApi() {
  const written: CoreV1Event[] = [];
  const pending: Array<() => void> = [];
  return {
    written, pending,
    createEvent: (e: CoreV1Event) => new Promise<unknown>((resolve) => pending.push(() => { written.push(e); resolve(e); })),
    release: () => { for (const r of pending.splice(0)) r(); },
  };
}

test('record returns before the API answers; the event is written in the background', async () => {
  const api = slowApi();
  const rec = new EventRecorder(api, 'op', { rate: { qps: 100, burst: 10 }, onError: (e) => assert.fail(String(e)) });
  const returned = rec.record(target('a'), 'Normal', 'Issued', 'issued');
  assert.equal(returned, undefined, 'nothing to wait for');
  await new Promise((r) => setImmediate(r));
  assert.equal(api.pending.length, 1, 'the write is in flight');
  assert.equal(api.written.length, 0);
  api.release();
  await rec.flush();
  assert.equal(api.written.length, 1);
  assert.equal(api.written[0]!.reason, 'Issued');
  assert.equal(api.written[0]!.involvedObject.uid, 'a');
});

test('identical events for one object are written once; another object or reason is written', async () => {
  const written: CoreV1Event[] = [];
  const rec = new EventRecorder({ createEvent: async (e) => written.push(e) }, 'op', { rate: { qps: 100, burst: 10 }, onError: (e) => assert.fail(String(e)) });
  rec.record(target('a'), 'Warning', 'Failed', 'x');
  rec.record(target('a'), 'Warning', 'Failed', 'x');
  rec.record(target('b'), 'Warning', 'Failed', 'x');
  rec.record(target('a'), 'Warning', 'Other', 'x');
  await rec.flush();
  assert.deepEqual(written.map((e) => `${e.involvedObject.uid} ${e.reason}`).sort(), ['a Failed', 'a Other', 'b Failed']);
});

test('writes are paced by the recorder\'s own budget: the burst at once, then one per 1/qps', async () => {
  const api = slowApi();
  const started: number[] = [];
  const rec = new EventRecorder({ createEvent: (e) => { started.push(performance.now()); return api.createEvent(e); } }, 'op', { rate: { qps: 5, burst: 2 }, onError: (e) => assert.fail(String(e)) });
  for (let i = 0; i < 6; i++) rec.record(target(String(i)), 'Normal', 'Issued', 'x');
  assert.equal(api.pending.length, 2, 'the burst (two tokens) is in flight at once; the rest wait for their tokens');
  const answering = setInterval(api.release, 10);
  await rec.flush();
  clearInterval(answering);
  assert.equal(api.written.length, 6, 'all written in the end');
  // Write k (k >= 2) needs the token due (k - 1) x 200 ms after the first: lower bounds only, so a slow machine cannot fail them.
  for (let k = 2; k < 6; k++) assert.ok(started[k]! - started[0]! >= (k - 1) * 200 - 5, `write ${k} after ${Math.round(started[k]! - started[0]!)} ms`);
});

test('a full queue drops the new event and says so; a failed write is reported, never thrown', async () => {
  const api = slowApi();
  const errors: string[] = [];
  const rec = new EventRecorder(api, 'op', { rate: { qps: 100, burst: 100 }, maxQueued: 2, onError: (e) => errors.push((e as Error).message) });
  for (let i = 0; i < 8; i++) rec.record(target(String(i)), 'Normal', 'Issued', 'x');
  // 4 writers took one each; 2 more queued; 2 dropped.
  assert.equal(errors.length, 2);
  assert.match(errors[0]!, /event queue full/);
  api.release();
  await new Promise((r) => setImmediate(r));
  api.release();
  await rec.flush();
  assert.equal(api.written.length, 6);

  const failing = new EventRecorder({ createEvent: async () => { throw new Error('boom'); } }, 'op', { rate: { qps: 100, burst: 10 }, onError: (e) => errors.push((e as Error).message) });
  failing.record(target('z'), 'Normal', 'Issued', 'x');
  await failing.flush();
  assert.equal(errors.at(-1), 'boom');
});

test('an event recorded just as every writer finds the queue empty is still written', async () => {
  // The late event arrives k microtasks after the writers' last writes end: some k falls between a
  // writer finding the queue empty and its cleanup, the moment a leaving writer could be counted as busy.
  for (let k = 0; k < 12; k++) {
    const api = slowApi();
    const rec = new EventRecorder(api, 'op', { rate: { qps: 1000, burst: 1000 }, onError: (e) => assert.fail(String(e)) });
    for (let i = 0; i < 4; i++) rec.record(target(`w${i}`), 'Normal', 'Issued', 'x');
    await new Promise((r) => setImmediate(r));
    api.release();
    for (let i = 0; i < k; i++) await Promise.resolve();
    rec.record(target('late'), 'Normal', 'Issued', 'x');
    await new Promise((r) => setImmediate(r));
    api.release();
    await rec.flush(1000);
    assert.equal(api.written.length, 5, `late event after ${k} microtasks`);
  }
});

test('what is remembered for collapsing stays bounded: the oldest event is forgotten first, and may then be written again', async () => {
  const written: CoreV1Event[] = [];
  const rec = new EventRecorder({ createEvent: async (e) => written.push(e) }, 'op', { rate: { qps: 1000, burst: 1000 }, maxRecent: 3, onError: (e) => assert.fail(String(e)) });
  for (const uid of ['a', 'b', 'c', 'd']) rec.record(target(uid), 'Normal', 'Issued', `issued ${uid}`);
  assert.equal(rec.remembered(), 3, 'bounded by maxRecent');
  rec.record(target('d'), 'Normal', 'Issued', 'issued d');
  rec.record(target('a'), 'Normal', 'Issued', 'issued a');
  await rec.flush();
  assert.deepEqual(written.map((e) => e.involvedObject.uid), ['a', 'b', 'c', 'd', 'a'], 'd still collapsed; a forgotten, so written again');
  assert.equal(rec.remembered(), 3);
});
