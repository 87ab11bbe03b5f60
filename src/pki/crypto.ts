// The single place @peculiar/x509 is loaded and bound to Node's WebCrypto.
// At runtime, take `x509` from here, never from '@peculiar/x509' directly
// (type-only imports are fine): its tsyringe dependency refuses to load
// unless a Reflect metadata polyfill was imported first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { webcrypto } from 'node:crypto';

// The tsconfig has no DOM lib, so WebCrypto types come from node:crypto.
export type CryptoKey = webcrypto.CryptoKey;

x509.cryptoProvider.set(globalThis.crypto);

export { x509 };
export const subtle: webcrypto.SubtleCrypto = globalThis.crypto.subtle;
