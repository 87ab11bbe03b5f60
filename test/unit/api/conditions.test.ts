import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setCondition, getCondition } from '../../../src/api/conditions.ts';

const t1 = new Date('2026-01-01T00:00:00.123Z');
const t2 = new Date('2026-01-01T01:00:00Z');

test('lastTransitionTime moves only when status flips', () => {
  const a = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'Issued', message: 'm1' }, t1);
  assert.equal(a[0]!.lastTransitionTime, '2026-01-01T00:00:00Z');
  const b = setCondition(a, { type: 'Ready', status: 'True', reason: 'Issued', message: 'm2' }, t2);
  assert.equal(b[0]!.lastTransitionTime, '2026-01-01T00:00:00Z');
  assert.equal(b[0]!.message, 'm2');
  const c = setCondition(b, { type: 'Ready', status: 'False', reason: 'Expired', message: 'm3' }, t2);
  assert.equal(c[0]!.lastTransitionTime, '2026-01-01T01:00:00Z');
});

test('conditions are keyed by type', () => {
  let l = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'r', message: 'm' }, t1);
  l = setCondition(l, { type: 'Issuing', status: 'False', reason: 'r', message: 'm' }, t1);
  l = setCondition(l, { type: 'Ready', status: 'False', reason: 'x', message: 'm' }, t1);
  assert.equal(l.length, 2);
  assert.equal(getCondition(l, 'Ready')?.reason, 'x');
  assert.equal(getCondition(l, 'Issuing')?.status, 'False');
});
