import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Bundle } from '../../../src/pki/bundle.ts';
import { createRoot } from '../../../src/pki/ca.ts';
import { PkiError } from '../../../src/pki/errors.ts';
import { parseCertificates } from '../../../src/pki/parse.ts';
import { certificatesToPem } from '../../../src/pki/pem.ts';
import { DAY, NOW, TD } from './fixtures.ts';

async function roots() {
  const make = async (offsetDays: number) =>
    parseCertificates((await createRoot({ trustDomain: TD, algorithm: 'ECDSA', validityMs: DAY, now: new Date(NOW.getTime() + offsetDays * DAY) })).certificatePem)[0]!;
  return { older: await make(0), newer: await make(1) };
}

describe('Bundle', () => {
  it('deduplicates and orders roots oldest first, whatever the input order', async () => {
    const { older, newer } = await roots();
    const a = new Bundle(TD, [newer, older, newer]);
    const b = Bundle.fromPem(TD, certificatesToPem([older, newer, older]));
    assert.deepEqual(a.roots.map((r) => r.serialNumber), [older.serialNumber, newer.serialNumber]);
    assert.equal(a.toPem(), b.toPem(), 'same set, same bytes');
    assert.equal(a.trustDomain, TD);
  });

  it('orders roots with the same notBefore deterministically', async () => {
    const opts = { trustDomain: TD, algorithm: 'ECDSA' as const, validityMs: DAY, now: NOW };
    const [x, y] = await Promise.all([createRoot(opts), createRoot(opts)]);
    const pemX = x.certificatePem;
    const pemY = y.certificatePem;
    assert.equal(Bundle.fromPem(TD, pemX + pemY).toPem(), Bundle.fromPem(TD, pemY + pemX).toPem());
  });

  it('round-trips through PEM', async () => {
    const { older, newer } = await roots();
    const pem = new Bundle(TD, [older, newer]).toPem();
    assert.equal(Bundle.fromPem(TD, pem).toPem(), pem);
    assert.match(pem, /^(-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n){2}$/);
  });

  it('rejects an invalid trust domain and a PEM without certificates', () => {
    assert.throws(() => new Bundle('Not Valid', []), (e: unknown) => e instanceof PkiError && e.reason === 'InvalidTrustDomain');
    assert.throws(() => Bundle.fromPem(TD, 'nothing here'), (e: unknown) => e instanceof PkiError && e.reason === 'CertificateUnparsable');
  });
});
