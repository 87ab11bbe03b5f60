// The bundle endpoint's and the fetcher's flags: refused by name at start-up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../../src/config.ts';

test('no --bundle-endpoint-port: not served; the fetch bounds default to 30s and 1h', () => {
  const c = loadConfig([], {});
  assert.equal(c.bundleEndpointPort, undefined);
  assert.equal(c.bundleEndpointHost, '0.0.0.0');
  assert.equal(c.federationRefreshMinMs, 30_000);
  assert.equal(c.federationRefreshMaxMs, 3_600_000);
  assert.equal(loadConfig(['--bundle-endpoint-port=8443'], {}).bundleEndpointPort, 8443);
  assert.equal(loadConfig([], { AGENT_IDENTITY_BUNDLE_ENDPOINT_PORT: '9000' }).bundleEndpointPort, 9000);
});

test('a bad port, a port shared with another server, or contradictory bounds are refused by name', () => {
  assert.throws(() => loadConfig(['--bundle-endpoint-port=0'], {}), /--bundle-endpoint-port must be an integer >= 1/);
  assert.throws(() => loadConfig(['--bundle-endpoint-port=70000'], {}), /--bundle-endpoint-port must be a port number/);
  assert.throws(() => loadConfig(['--bundle-endpoint-port=9443', '--webhook-port=9443'], {}), /--bundle-endpoint-port must differ from --webhook-port/);
  assert.throws(() => loadConfig(['--bundle-endpoint-port=8080'], {}), /--bundle-endpoint-port must differ from --http-port/);
  assert.throws(() => loadConfig(['--federation-refresh-min=500ms'], {}), /--federation-refresh-min must be at least 1s/);
  assert.throws(() => loadConfig(['--federation-refresh-min=10m', '--federation-refresh-max=5m'], {}), /--federation-refresh-max \(5m\) must not be shorter than --federation-refresh-min \(10m\)/);
  assert.throws(() => loadConfig(['--federation-refresh-max=soon'], {}), /--federation-refresh-max must be a duration/);
});
