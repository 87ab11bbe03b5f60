import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantityValue } from '../../../src/api/quantity.ts';

test('quantities read as the API server writes them; anything else is no quantity', () => {
  const cases: Array<[unknown, number | undefined]> = [
    ['500m', 0.5], ['0.5', 0.5], ['1', 1], ['64Mi', 64 * 2 ** 20], ['1Gi', 2 ** 30], ['2k', 2000], ['1e3', 1000],
    ['', undefined], ['1.2.3', undefined], ['12q', undefined], ['-1', undefined], ['1e', undefined], [100, undefined], [undefined, undefined],
  ];
  for (const [q, want] of cases) assert.equal(quantityValue(q), want, String(q));
});
