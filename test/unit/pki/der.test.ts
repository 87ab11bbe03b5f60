// The DER writer against encodings worked out by hand from X.690 (the Leaf
// builder on top of it is checked against OpenSSL and @peculiar/x509 elsewhere).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as der from '../../../src/pki/der.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('DER writer', () => {
  it('writes short and long definite lengths', () => {
    assert.equal(hex(der.octetString(Buffer.alloc(0))), '0400');
    assert.equal(hex(der.octetString(Buffer.alloc(127))).slice(0, 4), '047f');
    assert.equal(hex(der.octetString(Buffer.alloc(128))).slice(0, 6), '048180');
    assert.equal(hex(der.octetString(Buffer.alloc(255))).slice(0, 6), '0481ff');
    assert.equal(hex(der.octetString(Buffer.alloc(256))).slice(0, 8), '04820100');
    assert.equal(hex(der.octetString(Buffer.alloc(70_000))).slice(0, 10), '0483011170');
  });

  it('writes INTEGERs minimally and positive', () => {
    assert.equal(hex(der.unsignedInteger(Buffer.from([0x00, 0x00, 0x7f]))), '02017f');
    assert.equal(hex(der.unsignedInteger(Buffer.from([0x80]))), '02020080');
    assert.equal(hex(der.unsignedInteger(Buffer.from([0x00, 0x80, 0x01]))), '0203008001');
    assert.equal(hex(der.unsignedInteger(Buffer.alloc(0))), '020100');
    assert.equal(hex(der.unsignedInteger(Buffer.from([0, 0]))), '020100');
    assert.equal(hex(der.smallInteger(2)), '020102');
    assert.equal(hex(der.smallInteger(0)), '020100');
    assert.equal(hex(der.smallInteger(65_537)), '0203010001');
  });

  it('writes OBJECT IDENTIFIERs in base 128', () => {
    assert.equal(hex(der.oid('2.5.29.17')), '0603551d11');
    assert.equal(hex(der.oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302');
    assert.equal(hex(der.oid('1.3.6.1.4.1.311.20.2.3')), '060a2b060104018237140203');
    assert.equal(hex(der.oid('2.999.3')), '0603883703');
    assert.throws(() => der.oid('1'), /not an OID/);
    assert.throws(() => der.oid('1.2.x'), /not an OID/);
  });

  it('writes named bits with trailing zero bits dropped', () => {
    assert.equal(hex(der.namedBits([0])), '03020780', 'digitalSignature');
    assert.equal(hex(der.namedBits([0, 2])), '030205a0', 'digitalSignature, keyEncipherment');
    assert.equal(hex(der.namedBits([0, 5, 6])), '03020186', 'digitalSignature, keyCertSign, cRLSign');
    assert.equal(hex(der.namedBits([8])), '0303070080', 'decipherOnly');
    assert.equal(hex(der.namedBits([])), '030100');
    assert.equal(hex(der.bitString(Buffer.from([0xab]))), '030200ab');
  });

  it('writes UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 4.1.2.5)', () => {
    assert.equal(Buffer.from(der.time(new Date('2030-06-01T12:00:05.999Z'))).subarray(2).toString(), '300601120005Z');
    assert.equal(der.time(new Date('2049-12-31T23:59:59Z'))[0], 0x17);
    assert.equal(Buffer.from(der.time(new Date('2049-12-31T23:59:59Z'))).subarray(2).toString(), '491231235959Z');
    assert.equal(der.time(new Date('2050-01-01T00:00:00Z'))[0], 0x18);
    assert.equal(Buffer.from(der.time(new Date('2050-01-01T00:00:00Z'))).subarray(2).toString(), '20500101000000Z');
    assert.equal(Buffer.from(der.time(new Date('2001-02-03T04:05:06Z'))).subarray(2).toString(), '010203040506Z');
  });

  it('sorts SET OF by encoding, and tags context-specific elements', () => {
    assert.equal(hex(der.set(der.smallInteger(3), der.smallInteger(1))), '3106020101020103');
    assert.equal(hex(der.explicit(0, der.smallInteger(2))), 'a003020102');
    assert.equal(hex(der.implicit(2, Buffer.from('a'))), '820161');
    assert.equal(hex(der.sequence()), '3000');
    assert.equal(hex(der.boolean(true)), '0101ff');
    assert.equal(hex(der.NULL), '0500');
  });

  it('strings: PrintableString as ASCII, UTF8String as UTF-8', () => {
    assert.equal(hex(der.printableString('A b')), '1303412062');
    assert.equal(hex(der.utf8String('é')), '0c02c3a9');
  });

  it('reads back the elements of what it wrote', () => {
    const long = der.octetString(Buffer.alloc(300, 7));
    const seq = der.sequence(der.smallInteger(1), long, der.sequence());
    assert.deepEqual(der.elementsOf(seq).map(hex), [hex(der.smallInteger(1)), hex(long), '3000']);
    assert.deepEqual(der.contentsOf(long), Buffer.alloc(300, 7));
    assert.throws(() => der.elementsOf(seq.subarray(0, seq.length - 1)), /truncated/);
  });
});
