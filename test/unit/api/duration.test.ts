import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, formatDuration } from '../../../src/api/duration.ts';

test('parses Go durations', () => {
  const table: Array<[string, number]> = [['24h', 86_400_000], ['10m', 600_000], ['90s', 90_000], ['1h30m', 5_400_000], ['1.5h', 5_400_000], ['250ms', 250], ['0', 0], ['-5s', -5000]];
  for (const [s, ms] of table) assert.equal(parseDuration(s), ms, s);
});

test('refuses what is not a duration, with a hint', () => {
  for (const s of ['', '10', '1d', 'h', '10m5', 'ten minutes', '1h 30m']) {
    assert.throws(() => parseDuration(s), /invalid duration/, s);
  }
});

test('formats like Go', () => {
  assert.equal(formatDuration(600_000), '10m');
  assert.equal(formatDuration(5_400_000), '1h30m');
  assert.equal(formatDuration(1500), '1.5s');
  assert.equal(formatDuration(0), '0s');
});
