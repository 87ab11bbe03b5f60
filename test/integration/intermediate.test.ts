// The intermediate renews itself well before expiry and no agent notices:
// with an 8 s intermediate, two agents keep completing mutual TLS every 100 ms
// across several intermediate renewals, under the same root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestEnv } from '../support/env.ts';
import { setUp, tearDown } from '../support/suite.ts';
import { eventually } from '../support/operator.ts';
import { api, isReady, secretText } from '../support/objects.ts';
import { mtlsHandshake, type Material } from '../support/tls.ts';
import { parseCertificates, fingerprintOf } from '../../src/pki/parse.ts';
import type { Operator } from '../../src/operator.ts';

let env: TestEnv;
let op: Operator;
let a: ReturnType<typeof api>;

before(async () => {
  ({ env, op, a } = await setUp({ operator: { intermediateDurationMs: 8000 } }));
});
after(() => tearDown({ env, op }));

test('intermediate renewals under live traffic: no failed handshake, same root, leaves carry the new intermediate', async (t) => {
  const ns = await env.namespace('intermediate');
  await a.createIdentity(ns, 'server', { duration: '1h' });
  await a.createIdentity(ns, 'client', { duration: '1h' });
  await eventually(async () => isReady(await a.getIdentity(ns, 'server')) && isReady(await a.getIdentity(ns, 'client')), { what: 'both Ready' });
  const first = (await a.getTrustDomain('default')).status!;
  const root = first.roots![0]!.fingerprint;

  const material = async (name: string): Promise<Material> => {
    const s = await a.getSecret(ns, `${name}-identity`);
    return { cert: secretText(s, 'tls.crt'), key: secretText(s, 'tls.key'), ca: secretText(s, 'ca.crt') };
  };
  const intermediates = new Set<string>([first.intermediate!.fingerprint]);
  let ok = 0;
  const failures: string[] = [];
  const end = Date.now() + 20_000;
  while (Date.now() < end) {
    const r = await mtlsHandshake(...(await Promise.all([material('server'), material('client')])));
    if (r.authorized) ok++; else failures.push(`${new Date().toISOString()}: ${r.error}`);
    intermediates.add((await a.getTrustDomain('default')).status!.intermediate!.fingerprint);
    await new Promise((res) => setTimeout(res, 100));
  }
  t.diagnostic(`${ok} handshakes over 20 s, ${failures.length} failed; ${intermediates.size} intermediates seen`);
  assert.deepEqual(failures, []);
  assert.ok(intermediates.size >= 3, `the 8 s intermediate renewed at least twice: ${intermediates.size} seen`);

  const now = (await a.getTrustDomain('default')).status!;
  assert.deepEqual(now.roots!.map((r) => r.fingerprint), [root], 'the root did not change');
  assert.equal(now.rotation, undefined, 'renewing the intermediate is not a root rotation');
  await eventually(async () => {
    const chain = parseCertificates(secretText(await a.getSecret(ns, 'server-identity'), 'tls.crt'));
    const current = (await a.getTrustDomain('default')).status!.intermediate!.fingerprint;
    return (await fingerprintOf(chain[1]!)) === current;
  }, { what: 'the leaf to carry the current intermediate' });
});
