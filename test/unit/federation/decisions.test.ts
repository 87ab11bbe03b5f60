// Federation's pure decisions (and the fetch's refusal of a non-https URL): the served document's sequence, whether a fetched
// bundle replaces the one held, when to fetch next, and when the endpoint's SVID is due.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRoot, loadCA } from '../../../src/pki/ca.ts';
import { parseCertificates } from '../../../src/pki/parse.ts';
import { parseBundleDocument } from '../../../src/federation/document.ts';
import { decidePublication } from '../../../src/federation/publication.ts';
import { nextRefreshMs, refusal } from '../../../src/federation/refresh.ts';
import { fetchBundleDocument } from '../../../src/federation/fetch.ts';
import { ENDPOINT_SVID_DURATION_MS, issueEndpointSVID, svidRenewal } from '../../../src/federation/endpoint-svid.ts';

const NOW = new Date('2030-06-01T12:00:00.000Z');
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

async function rootOf(offsetMs = 0) {
  const m = await createRoot({ trustDomain: 'cluster-a.test', algorithm: 'ECDSA', validityMs: 30 * 86_400_000, now: new Date(NOW.getTime() + offsetMs) });
  return { cert: parseCertificates(m.certificatePem)[0]!, ca: await loadCA(m.certificatePem, m.privateKeyPem) };
}

describe('decidePublication', () => {
  it('starts the sequence at the clock, keeps it while nothing changes, and raises it on every change', async () => {
    const a = await rootOf();
    const b = await rootOf(1000);
    const first = decidePublication([a.cert], 300, undefined, NOW);
    assert.equal(first.sequence, seconds(NOW));
    assert.ok(first.changed);
    const later = new Date(NOW.getTime() + 3_600_000);
    const same = decidePublication([a.cert], 300, first.document, later);
    assert.deepEqual(same, { document: first.document, sequence: first.sequence, changed: false }, 'same Roots: the same bytes, even an hour later');
    // A change within the same second still goes up by one.
    const rotated = decidePublication([a.cert, b.cert], 300, first.document, NOW);
    assert.equal(rotated.sequence, first.sequence + 1);
    assert.equal(parseBundleDocument(rotated.document).roots.length, 2);
    // A change later jumps to the clock: a lost record can never produce a lower sequence than one published.
    assert.equal(decidePublication([b.cert], 300, rotated.document, later).sequence, seconds(later));
    assert.equal(decidePublication([a.cert], 60, first.document, NOW).sequence, first.sequence + 1, 'a new refresh hint is a change');
  });

  it('replaces a damaged record with a sequence from the clock', async () => {
    const a = await rootOf();
    const p = decidePublication([a.cert], 300, '{"keys": "broken"', NOW);
    assert.ok(p.changed);
    assert.equal(p.sequence, seconds(NOW));
  });
});

describe('refusal', () => {
  it('refuses a lower sequence, or none after there was one; accepts equal, higher, and anything over the initial bundle', () => {
    assert.equal(refusal({ sequence: 5 }, { sequence: 4 })?.reason, 'SequenceWentBackwards');
    assert.equal(refusal({ sequence: 5 }, {})?.reason, 'SequenceMissing');
    assert.equal(refusal({ sequence: 5 }, { sequence: 5 }), undefined);
    assert.equal(refusal({ sequence: 5 }, { sequence: 6 }), undefined);
    assert.equal(refusal({}, {}), undefined);
    assert.equal(refusal(undefined, { sequence: 1 }), undefined);
  });
});

describe('nextRefreshMs', () => {
  it('follows the hint within the bounds; no hint means the maximum', () => {
    const b = { minMs: 30_000, maxMs: 3_600_000 };
    assert.equal(nextRefreshMs(300, b), 300_000);
    assert.equal(nextRefreshMs(1, b), 30_000);
    assert.equal(nextRefreshMs(0, b), 30_000);
    assert.equal(nextRefreshMs(86_400, b), 3_600_000);
    assert.equal(nextRefreshMs(undefined, b), 3_600_000);
  });
});

describe('svidRenewal', () => {
  it('issues the endpoint SVID, and renews it when missing, two thirds through, for another signer or other DNS names', async () => {
    const { ca } = await rootOf();
    const want = { trustDomain: 'cluster-a.test', dnsNames: ['bundle.example'], signer: ca };
    assert.equal((await svidRenewal(undefined, want, NOW)).reason, 'Missing');
    const svid = await issueEndpointSVID(want, NOW);
    const fresh = await svidRenewal(svid.certificatePem, want, NOW);
    assert.equal(fresh.reason, undefined);
    const leaf = parseCertificates(svid.certificatePem)[0]!;
    assert.equal(fresh.dueAt!.getTime(), leaf.notBefore.getTime() + Math.round((leaf.notAfter.getTime() - leaf.notBefore.getTime()) * 2 / 3));
    assert.ok(leaf.notAfter.getTime() - NOW.getTime() <= ENDPOINT_SVID_DURATION_MS);
    assert.equal((await svidRenewal(svid.certificatePem, want, new Date(fresh.dueAt!.getTime() + 1))).reason, 'Expiring');
    assert.equal((await svidRenewal(svid.certificatePem, { ...want, dnsNames: [] }, NOW)).reason, 'DNSNamesChanged');
    assert.equal((await svidRenewal(svid.certificatePem, { ...want, signer: (await rootOf(5000)).ca }, NOW)).reason, 'SignerChanged');
    assert.equal((await svidRenewal(svid.certificatePem, { ...want, trustDomain: 'other.test' }, NOW)).reason, 'SPIFFEIDChanged');
    assert.equal((await svidRenewal('garbage', want, NOW)).reason, 'Unparsable');
  });
});

describe('fetchBundleDocument', () => {
  it('refuses anything but https before connecting', async () => {
    await assert.rejects(fetchBundleDocument({ url: 'http://127.0.0.1:1/bundle', profile: { type: 'https_web' }, roots: [], timeoutMs: 1000 }), { reason: 'FetchFailed', message: /not an https:\/\/ URL/ });
  });
});
