import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RestorePace } from '../../../src/trust/restore-pace.ts';

test('the same content is written into a copy at most once per interval; new content and other copies at once', () => {
  let now = 0;
  const pace = new RestorePace(1000, () => now);
  const bundle = { bundlePem: 'root-1', denyJson: '[]' };
  assert.equal(pace.wait('ns-a/trust-bundle', bundle), 0, 'never written: at once');
  pace.writing('ns-a/trust-bundle', bundle);
  now = 300;
  assert.equal(pace.wait('ns-a/trust-bundle', bundle), 700, 'a restore of the same content waits out the interval');
  assert.equal(pace.wait('ns-b/trust-bundle', bundle), 0, 'another copy is not held back');
  assert.equal(pace.wait('ns-a/trust-bundle', { bundlePem: 'root-1 root-2', denyJson: '[]' }), 0, 'a new bundle is never held back');
  assert.equal(pace.wait('ns-a/trust-bundle', { bundlePem: 'root-1', denyJson: '[{"serial":"1"}]' }), 0, 'nor a new deny list');
  now = 1000;
  assert.equal(pace.wait('ns-a/trust-bundle', bundle), 0, 'once the interval is over');
});
