// The SPIFFE bundle document codec: what we publish reads back the same, go-spiffe's
// and SPIRE's documents parse, and a hostile or malformed document is refused with a reason.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createRoot } from '../../../src/pki/ca.ts';
import { parseCertificates } from '../../../src/pki/parse.ts';
import type { KeyAlgorithm } from '../../../src/api/types.ts';
import { BundleDocumentError, encodeBundleDocument, parseBundleDocument, parseInitialBundle } from '../../../src/federation/document.ts';

const NOW = new Date('2030-06-01T12:00:00.000Z');

async function root(algorithm: KeyAlgorithm = 'ECDSA', offsetMs = 0) {
  const m = await createRoot({ trustDomain: 'partner.example', algorithm, validityMs: 86_400_000, now: new Date(NOW.getTime() + offsetMs) });
  return { pem: m.certificatePem, cert: parseCertificates(m.certificatePem)[0]! };
}

const der = (c: { rawData: ArrayBuffer }) => Buffer.from(c.rawData).toString('base64');

function refused(doc: string, reason: string, message: RegExp) {
  assert.throws(() => parseBundleDocument(doc), (e: unknown) => e instanceof BundleDocumentError && e.reason === reason && message.test(e.message));
}

describe('encodeBundleDocument', () => {
  it('writes each Root as an x509-svid JWK with its key parameters, the sequence and the refresh hint', async () => {
    const ec = await root('ECDSA');
    const rsa = await root('RSA', 1000);
    const ed = await root('Ed25519', 2000);
    const text = encodeBundleDocument({ roots: [ec.cert, rsa.cert, ed.cert], sequence: 7, refreshHintSeconds: 300 });
    const doc = JSON.parse(text);
    assert.equal(doc.spiffe_sequence, 7);
    assert.equal(doc.spiffe_refresh_hint, 300);
    assert.deepEqual(doc.keys.map((k: { use: string; kty: string }) => [k.use, k.kty]), [['x509-svid', 'EC'], ['x509-svid', 'RSA'], ['x509-svid', 'OKP']]);
    assert.equal(doc.keys[0].crv, 'P-256');
    assert.ok(doc.keys[0].x && doc.keys[0].y && !doc.keys[0].d, 'EC public parameters only');
    assert.ok(doc.keys[1].n && doc.keys[1].e && !doc.keys[1].d, 'RSA public parameters only');
    assert.deepEqual(doc.keys.map((k: { x5c: string[] }) => k.x5c), [[der(ec.cert)], [der(rsa.cert)], [der(ed.cert)]]);
  });

  it('reads back as it was written, and the same input gives the same bytes', async () => {
    const a = await root();
    const b = await root('ECDSA', 1000);
    const text = encodeBundleDocument({ roots: [a.cert, b.cert], sequence: 42, refreshHintSeconds: 60 });
    assert.equal(text, encodeBundleDocument({ roots: [a.cert, b.cert], sequence: 42, refreshHintSeconds: 60 }));
    const parsed = parseBundleDocument(text);
    assert.deepEqual(parsed.roots.map(der), [der(a.cert), der(b.cert)]);
    assert.equal(parsed.sequence, 42);
    assert.equal(parsed.refreshHintSeconds, 60);
  });
});

describe('parseBundleDocument', () => {
  it('parses a document in the shape go-spiffe and SPIRE write: a P-384 Root, a jwt-svid key, no sequence', async () => {
    const r = await root();
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const jwk = publicKey.export({ format: 'jwk' });
    // Field order, indentation and the jwt-svid entry as go-spiffe's spiffebundle testdata has them.
    const doc = `{
    "keys": [
        {
            "use": "x509-svid",
            "kty": "EC",
            "crv": "P-256",
            "x": "${(JSON.parse(encodeBundleDocument({ roots: [r.cert], sequence: 0, refreshHintSeconds: 0 })).keys[0].x)}",
            "y": "${(JSON.parse(encodeBundleDocument({ roots: [r.cert], sequence: 0, refreshHintSeconds: 0 })).keys[0].y)}",
            "x5c": [
                "${der(r.cert)}"
            ]
        },
        {
            "use": "jwt-svid",
            "kty": "EC",
            "kid": "C6vs25welZOx6WksNYfbMfiw9l96pMnD",
            "crv": "P-384",
            "x": "${jwk.x}",
            "y": "${jwk.y}"
        }
    ]
}`;
    const parsed = parseBundleDocument(doc);
    assert.deepEqual(parsed.roots.map(der), [der(r.cert)]);
    assert.equal(parsed.jwtAuthorities, 1);
    assert.equal(parsed.sequence, undefined);
    assert.equal(parsed.refreshHintSeconds, undefined);
  });

  it('parses a document go-spiffe v2.5.0 wrote (spiffebundle.Bundle.Marshal): EC, RSA and Ed25519 Roots, a jwt-svid key', () => {
    // Made by a throwaway Go program: spiffebundle.Parse of a document we encoded (it read 3 authorities,
    // sequence 42, hint 5m), then AddJWTAuthority, SetSequenceNumber(43), SetRefreshHint(30s) and Marshal.
    const parsed = parseBundleDocument(readFileSync(new URL('./fixtures/go-spiffe-v2.5.0-bundle.json', import.meta.url)));
    assert.equal(parsed.roots.length, 3);
    assert.equal(parsed.jwtAuthorities, 1);
    assert.equal(parsed.sequence, 43);
    assert.equal(parsed.refreshHintSeconds, 30);
  });

  it('deduplicates a Root listed twice', async () => {
    const r = await root();
    const one = JSON.parse(encodeBundleDocument({ roots: [r.cert], sequence: 1, refreshHintSeconds: 1 }));
    one.keys.push(one.keys[0]);
    assert.equal(parseBundleDocument(JSON.stringify(one)).roots.length, 1);
  });

  it('refuses a document over the size cap before parsing it', () => {
    const big = '{"keys":[' + ' '.repeat(2000) + ']}';
    assert.throws(() => parseBundleDocument(big, 1000), (e: unknown) => e instanceof BundleDocumentError && e.reason === 'BundleTooLarge');
    assert.throws(() => parseBundleDocument(Buffer.alloc(1024 * 1024 + 1, 0x20)), (e: unknown) => e instanceof BundleDocumentError && e.reason === 'BundleTooLarge');
  });

  it('refuses garbage, a non-object and a document without keys', () => {
    refused('<html>not found</html>', 'BundleUnparsable', /not JSON/);
    refused('[1,2]', 'BundleInvalid', /not a JSON object/);
    refused('{"spiffe_sequence":1}', 'BundleInvalid', /no keys array/);
    refused('{"keys":[]}', 'BundleInvalid', /no x509-svid key/);
  });

  it('refuses keys with no use or an unknown use, as SPIRE does', async () => {
    const r = await root();
    const key = JSON.parse(encodeBundleDocument({ roots: [r.cert], sequence: 1, refreshHintSeconds: 1 })).keys[0];
    const { use: _, ...noUse } = key;
    refused(JSON.stringify({ keys: [key, noUse] }), 'BundleInvalid', /key 1 has no use/);
    refused(JSON.stringify({ keys: [key, { ...key, use: 'sig' }] }), 'BundleInvalid', /key 1 has the use "sig"/);
    refused(JSON.stringify({ keys: [key, 'x'] }), 'BundleInvalid', /key 1 is not a JSON object/);
  });

  it('refuses an x509-svid key without exactly one certificate, or whose JWK is not its certificate\'s key', async () => {
    const a = await root();
    const b = await root('ECDSA', 1000);
    const ka = JSON.parse(encodeBundleDocument({ roots: [a.cert], sequence: 1, refreshHintSeconds: 1 })).keys[0];
    refused(JSON.stringify({ keys: [{ ...ka, x5c: [] }] }), 'BundleInvalid', /exactly one certificate/);
    refused(JSON.stringify({ keys: [{ ...ka, x5c: [der(a.cert), der(b.cert)] }] }), 'BundleInvalid', /exactly one certificate/);
    refused(JSON.stringify({ keys: [{ ...ka, x5c: ['!!!'] }] }), 'BundleInvalid', /not base64/);
    refused(JSON.stringify({ keys: [{ ...ka, x5c: [Buffer.from('not a certificate').toString('base64')] }] }), 'BundleInvalid', /not an X.509 certificate/);
    // A Root substituted under the JWK of another: the key parameters no longer match.
    refused(JSON.stringify({ keys: [{ ...ka, x5c: [der(b.cert)] }] }), 'BundleInvalid', /key 0: x does not match/);
  });

  it('refuses a jwt-svid key without kid', async () => {
    const a = await root();
    const ka = JSON.parse(encodeBundleDocument({ roots: [a.cert], sequence: 1, refreshHintSeconds: 1 })).keys[0];
    refused(JSON.stringify({ keys: [ka, { use: 'jwt-svid', kty: 'EC' }] }), 'BundleInvalid', /must have a kid/);
  });

  it('refuses a sequence or refresh hint that is not a safe non-negative integer', async () => {
    const a = await root();
    const doc = JSON.parse(encodeBundleDocument({ roots: [a.cert], sequence: 1, refreshHintSeconds: 1 }));
    refused(JSON.stringify({ ...doc, spiffe_sequence: -1 }), 'BundleInvalid', /spiffe_sequence/);
    refused(JSON.stringify({ ...doc, spiffe_sequence: '5' }), 'BundleInvalid', /spiffe_sequence/);
    refused(JSON.stringify(doc).replace('"spiffe_sequence":1', '"spiffe_sequence":18446744073709551615'), 'BundleInvalid', /spiffe_sequence/);
    refused(JSON.stringify({ ...doc, spiffe_refresh_hint: 1.5 }), 'BundleInvalid', /spiffe_refresh_hint/);
  });
});

describe('parseInitialBundle', () => {
  it('takes PEM Roots or a bundle document', async () => {
    const a = await root();
    assert.deepEqual(parseInitialBundle(a.pem).roots.map(der), [der(a.cert)]);
    assert.deepEqual(parseInitialBundle(encodeBundleDocument({ roots: [a.cert], sequence: 3, refreshHintSeconds: 5 })).roots.map(der), [der(a.cert)]);
    assert.throws(() => parseInitialBundle('hello'), /neither a SPIFFE bundle document nor PEM/);
  });
});
