import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existenceOnly } from '../../../src/kube/trim.ts';

test('a cached ServiceAccount keeps only what says it exists, and which version', () => {
  const sa = {
    apiVersion: 'v1', kind: 'ServiceAccount',
    metadata: {
      name: 'planner', namespace: 'agents', uid: 'u-1', resourceVersion: '42', labels: { team: 'a' },
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(4096), 'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/r' },
      creationTimestamp: '2026-12-07T00:00:00Z',
    },
    secrets: [{ name: 'planner-token' }], imagePullSecrets: [{ name: 'registry' }], automountServiceAccountToken: false,
  };
  existenceOnly(sa);
  assert.deepEqual(sa, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'planner', namespace: 'agents', uid: 'u-1', resourceVersion: '42' } });
  const leaving = { metadata: { name: 'old', namespace: 'agents', uid: 'u-2', resourceVersion: '7', deletionTimestamp: '2026-12-07T01:00:00Z' } };
  existenceOnly(leaving);
  assert.equal(leaving.metadata.deletionTimestamp, '2026-12-07T01:00:00Z');
});
