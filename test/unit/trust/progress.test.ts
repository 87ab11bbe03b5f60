// Rotation progress counts pod certificates: a ledger request whose
// certificate chains to a retiring root holds ReissuingLeaves until that
// certificate has expired; expired or released ones, and ones on the new
// root, do not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRoot, loadCA } from '../../../src/pki/ca.ts';
import { progressOf } from '../../../src/trust/progress.ts';
import { FakeCluster, ledgerRequest } from './fakes.ts';

const NOW = new Date('2030-06-01T12:00:00.000Z');
const HOUR = 3_600_000;

test('pod certificates under a retiring root are leaves on the retiring root until they expire', async () => {
  const rootPem = await createRoot({ trustDomain: 'cluster.local', algorithm: 'ECDSA', now: NOW, validityMs: 1000 * HOUR });
  const signer = await loadCA(rootPem.certificatePem, rootPem.privateKeyPem);
  const c = new FakeCluster();
  const entry = (rootFingerprint: string, now: Date, finalizer = true) =>
    ledgerRequest(signer, { identity: 'planner', namespace: 'agents', rootFingerprint, now, durationMs: 24 * HOUR, finalizer });
  c.podCertificateRequests.push(
    await entry('sha256:old', NOW),
    await entry('sha256:new', NOW),
    await entry('sha256:old', new Date(NOW.getTime() - 30 * HOUR)), // expired
    await entry('sha256:old', NOW, false), // released from the ledger
  );
  const d = { ...c.deps(), now: () => NOW };
  const p = progressOf(d, 'default', new Set(['sha256:old']), '');
  assert.equal(p.leavesOnRetiring, 1);
  assert.equal(p.leaves, 2);
  assert.equal(progressOf(d, 'other', new Set(['sha256:old']), '').leavesOnRetiring, 0, 'only its own TrustDomain\'s');
  const later = progressOf({ ...d, now: () => new Date(NOW.getTime() + 25 * HOUR) }, 'default', new Set(['sha256:old']), '');
  assert.equal(later.leavesOnRetiring, 0, 'once expired, the old root may retire');
});
