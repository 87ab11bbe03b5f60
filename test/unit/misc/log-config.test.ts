import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, prettyColorize, scrub } from '../../../src/log.ts';
import { loadConfig } from '../../../src/config.ts';
import { generateKeyPair, privateKeyToPem } from '../../../src/pki/keys.ts';
import { containsPem } from '../../support/pem.ts';

test('the logger never writes a PEM private key, wherever it hides', async () => {
  const pem = await privateKeyToPem(await generateKeyPair('ECDSA', 256));
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _e, cb) { lines.push(chunk.toString()); cb(); } });
  const log = createLogger('info', 'json', sink);
  log.info({ detail: `oops ${pem}` }, 'structured');
  log.info(`message ${pem}`);
  log.error({ err: new Error(`wrapped ${pem}`) }, 'error');
  const out = lines.join('');
  assert.equal(lines.length, 3);
  assert.doesNotMatch(out, containsPem('PRIVATE KEY'));
  assert.doesNotMatch(out, /MIG[A-Za-z0-9+/]{20}/, 'no base64 DER of a key either');
  assert.match(out, /REDACTED PRIVATE KEY/);
});

test('scrub leaves certificates alone', () => {
  const cert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
  assert.equal(scrub(cert), cert);
});

test('pretty logs are coloured only on a terminal, and never with NO_COLOR set', () => {
  assert.equal(prettyColorize(true, {}), true);
  assert.equal(prettyColorize(false, {}), false, 'a file or pipe gets no escape codes');
  assert.equal(prettyColorize(true, { NO_COLOR: '1' }), false);
  assert.equal(prettyColorize(true, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)');
});

test('config: flags beat environment beats defaults; bad values are refused clearly', () => {
  const d = loadConfig([], {});
  assert.equal(d.namespace, 'agent-identity-system');
  assert.equal(d.minDurationMs, 600_000);
  assert.equal(loadConfig([], { POD_NAMESPACE: 'ops' }).namespace, 'ops');
  assert.equal(loadConfig(['--namespace=x'], { POD_NAMESPACE: 'ops' }).namespace, 'x');
  assert.equal(loadConfig([], { AGENT_IDENTITY_QPS: '7' }).qps, 7);
  assert.deepEqual([d.qps, d.burst], [200, 2000]);
  assert.equal(loadConfig(['--burst=5'], { AGENT_IDENTITY_BURST: '9' }).burst, 5);
  assert.equal(loadConfig([], { AGENT_IDENTITY_BURST: '9' }).burst, 9);
  assert.throws(() => loadConfig(['--burst=0'], {}), /--burst must be an integer >= 1, got "0"/);
  assert.throws(() => loadConfig(['--qps=fast'], {}), /--qps must be an integer >= 1, got "fast"/);
  assert.throws(() => loadConfig(['--min-duration=soon'], {}), /--min-duration must be a duration/);
  assert.throws(() => loadConfig(['--bogus=1'], {}), /Unknown option/);
});
