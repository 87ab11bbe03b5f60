// loadPair: a CA is loaded once per PEM; a failure is never cached.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReconcileFailure } from '../../../src/controller/failure.ts';
import { createRoot } from '../../../src/pki/ca.ts';
import { loadPair } from '../../../src/trust/source.ts';

const root = (now: Date) => createRoot({ trustDomain: 'cluster.local', algorithm: 'ECDSA', validityMs: 86_400_000, now });

test('the same PEM loads to the same CA object; another PEM to another', async () => {
  const a = await root(new Date());
  const b = await root(new Date());
  const first = await loadPair(a.certificatePem, a.privateKeyPem, 'a');
  assert.equal(await loadPair(a.certificatePem, a.privateKeyPem, 'a'), first);
  assert.notEqual(await loadPair(b.certificatePem, b.privateKeyPem, 'b'), first);
});

test('an unusable CA fails every time, with its reason', async () => {
  const a = await root(new Date());
  const b = await root(new Date());
  for (let i = 0; i < 2; i++) {
    await assert.rejects(loadPair(a.certificatePem, b.privateKeyPem, 'mixed'), (err) => err instanceof ReconcileFailure && /does not match/.test(err.message));
  }
});
