// Certificate serial numbers: generating them, and the one string form used in status and annotations.
import type { X509Certificate } from '@peculiar/x509';

/**
 * A 128-bit serial number. The top bit is forced on so every serial has the
 * same length (32 hex digits) and 127 random bits, well above the 64 the
 * CA/Browser Forum requires; DER adds a 00 byte to keep it positive.
 */
export function randomSerialNumber(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  bytes[0]! |= 0x80;
  return Buffer.from(bytes).toString('hex');
}

/** Lowercase hex without leading zero bytes, e.g. "8f3c…" (32 digits for serials issued here). */
export function serialNumberOf(cert: X509Certificate): string {
  return serialNumberFromHex(cert.serialNumber);
}

/** The same form from any hex spelling of the serial (node:crypto's is uppercase). */
export function serialNumberFromHex(hex: string): string {
  return hex.toLowerCase().replace(/^(00)+(?=.)/, '');
}
