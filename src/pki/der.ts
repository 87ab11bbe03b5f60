// A lean DER writer (X.690): each function returns the complete encoding of
// one element as a Buffer, so building a TBSCertificate is a handful of
// concatenations, with no ASN.1 object graph to build and walk again.
// Only what the certificates issued here need. The reader below walks DER that
// OpenSSL has already parsed (certificate-fields.ts); full parsing stays with
// node:crypto and @peculiar/x509.

const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function lengthOctets(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One element: tag, definite length, contents. */
export function tlv(tag: number, contents: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthOctets(contents.length), contents]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, Buffer.concat(items));

/** A SET OF, its elements sorted by their encodings as DER requires. */
export const set = (...items: Uint8Array[]): Buffer => tlv(TAG.SET, Buffer.concat([...items].sort(Buffer.compare)));

/** Context-specific tags: [n] EXPLICIT wraps an element; [n] IMPLICIT replaces a primitive element's tag. */
export const explicit = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 | n, inner);
export const implicit = (n: number, contents: Uint8Array): Buffer => tlv(0x80 | n, contents);

export const NULL = Buffer.from([TAG.NULL, 0x00]);
export const boolean = (value: boolean): Buffer => Buffer.from([0x01, 0x01, value ? 0xff : 0x00]);

/** A non-negative INTEGER from its big-endian magnitude: leading zeros trimmed, a 00 added when the top bit is set. */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const body = magnitude.subarray(i);
  return tlv(TAG.INTEGER, body.length === 0 || body[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), body]) : body);
}

export const smallInteger = (n: number): Buffer => unsignedInteger(Buffer.from([n >> 24, n >> 16, n >> 8, n].map((b) => b & 0xff)));

/** An OBJECT IDENTIFIER from its dotted form, e.g. "2.5.29.17". */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new Error(`not an OID: ${dotted}`);
  const bytes: number[] = [];
  for (const arc of [arcs[0]! * 40 + arcs[1]!, ...arcs.slice(2)]) {
    const base128 = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift(0x80 | (v & 0x7f));
    bytes.push(...base128);
  }
  return tlv(TAG.OID, Buffer.from(bytes));
}

/** A BIT STRING of whole octets (keys, signatures): no unused bits. */
export const bitString = (octets: Uint8Array): Buffer => tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), octets]));

/**
 * A named-bit BIT STRING (KeyUsage) from bit numbers, bit 0 first: DER drops
 * trailing zero bits and counts the unused bits of the last octet.
 */
export function namedBits(bits: readonly number[]): Buffer {
  if (bits.length === 0) return tlv(TAG.BIT_STRING, Buffer.from([0]));
  const highest = Math.max(...bits);
  const octets = Buffer.alloc((highest >> 3) + 1);
  for (const b of bits) octets[b >> 3]! |= 0x80 >> (b & 7);
  return tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([7 - (highest & 7)]), octets]));
}

export const octetString = (octets: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, octets);
export const printableString = (s: string): Buffer => tlv(TAG.PRINTABLE_STRING, Buffer.from(s, 'latin1'));
export const utf8String = (s: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));

const two = (n: number) => String(n).padStart(2, '0');

/**
 * RFC 5280 4.1.2.5: UTCTime (YYMMDDHHMMSSZ) through 2049, GeneralizedTime
 * (YYYYMMDDHHMMSSZ) from 2050; whole seconds, always Zulu.
 */
export function time(date: Date): Buffer {
  const y = date.getUTCFullYear();
  const rest = `${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`;
  return y < 2050 ? tlv(TAG.UTC_TIME, Buffer.from(`${two(y % 100)}${rest}`, 'latin1')) : tlv(TAG.GENERALIZED_TIME, Buffer.from(`${String(y).padStart(4, '0')}${rest}`, 'latin1'));
}

/** The elements inside one constructed element (e.g. a SEQUENCE), each as its complete encoding. */
export function elementsOf(der: Uint8Array): Buffer[] {
  const { contents } = readElement(Buffer.from(der.buffer, der.byteOffset, der.byteLength), 0);
  const out: Buffer[] = [];
  for (let i = 0; i < contents.length; ) {
    const { end } = readElement(contents, i);
    out.push(contents.subarray(i, end));
    i = end;
  }
  return out;
}

/** The contents octets of one element. */
export const contentsOf = (der: Uint8Array): Buffer => readElement(Buffer.from(der.buffer, der.byteOffset, der.byteLength), 0).contents;

function readElement(der: Buffer, at: number): { contents: Buffer; end: number } {
  let length = der[at + 1];
  let head = 2;
  if (length === undefined) throw new Error('truncated DER');
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4 || at + 2 + n > der.length) throw new Error('unsupported DER length');
    length = 0;
    for (let j = 0; j < n; j++) length = length * 256 + der[at + 2 + j]!;
    head += n;
  }
  const end = at + head + length;
  if (end > der.length) throw new Error('truncated DER');
  return { contents: der.subarray(at + head, end), end };
}
