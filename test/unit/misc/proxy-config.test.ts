// The proxy sidecar's flags: parsed at start-up, so a typo is one line there,
// not a pod refused later; no image means no proxy (its pods are refused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, parseResources } from '../../../src/config.ts';

test('no --proxy-image: no proxy configuration at all', () => {
  assert.equal(loadConfig([], {}).proxy, undefined);
});

test('the image from the flag or the environment, with the default pull policy and resources', () => {
  const fromFlag = loadConfig(['--proxy-image=registry.example/aio:1'], {});
  assert.deepEqual(fromFlag.proxy, {
    image: 'registry.example/aio:1', imagePullPolicy: 'IfNotPresent',
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
  });
  const fromEnv = loadConfig([], { AGENT_IDENTITY_PROXY_IMAGE: 'x:2', AGENT_IDENTITY_PROXY_IMAGE_PULL_POLICY: 'Always', AGENT_IDENTITY_PROXY_RESOURCES: '{"limits":{"memory":"96Mi","cpu":"1"}}' });
  assert.deepEqual(fromEnv.proxy, { image: 'x:2', imagePullPolicy: 'Always', resources: { limits: { memory: '96Mi', cpu: '1' } } });
});

test('--proxy-metrics-port: a port for every injected proxy\'s /metrics, checked at start-up', () => {
  assert.equal(loadConfig(['--proxy-image=x:1', '--proxy-metrics-port=15020'], {}).proxy!.metricsPort, 15020);
  assert.equal(loadConfig(['--proxy-image=x:1'], { AGENT_IDENTITY_PROXY_METRICS_PORT: '9102' }).proxy!.metricsPort, 9102);
  assert.equal(loadConfig(['--proxy-image=x:1'], {}).proxy!.metricsPort, undefined);
  assert.throws(() => loadConfig(['--proxy-metrics-port=0'], {}), { message: '--proxy-metrics-port must be a port number (1-65535), got "0"' });
  assert.throws(() => loadConfig(['--proxy-metrics-port=15001'], {}), { message: '--proxy-metrics-port must not be 15001, the proxy\'s outbound port' });
});

test('a bad pull policy or resources are refused by name, even without an image', () => {
  assert.throws(() => loadConfig(['--proxy-image-pull-policy=Sometimes'], {}), { message: '--proxy-image-pull-policy must be IfNotPresent, Always or Never, got "Sometimes"' });
  assert.throws(() => loadConfig(['--proxy-resources={"requests":{"cpu":50}}'], {}), /--proxy-resources requests\.cpu is not a quantity such as "100m" or "64Mi" \(give it as a string\)/);
});

test('--proxy-resources accepts requests and limits only, of quantities', () => {
  assert.deepEqual(parseResources('{}'), {});
  assert.deepEqual(parseResources('{"requests":{"cpu":"0.5","memory":"1e3"}}'), { requests: { cpu: '0.5', memory: '1e3' } });
  assert.throws(() => parseResources('{"claims":[]}'), /has the field "claims", which is not supported \(only requests and limits\)/);
  assert.throws(() => parseResources('not json'), /--proxy-resources is not JSON/);
  assert.throws(() => parseResources('[]'), /is not a JSON object/);
  assert.throws(() => parseResources('{"limits":[]}'), /limits is not an object/);
  assert.throws(() => parseResources('{"limits":{"memory":"-1Mi"}}'), /limits\.memory is not a quantity/);
});
