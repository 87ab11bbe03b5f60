// What a served bundle document says, decided from the Roots and the last
// document published. Pure. spiffe_sequence must increase on every change of
// the Roots and survive restarts: the last published document (in its
// ConfigMap) is the record. A new sequence is also at least the current Unix
// time in seconds, so a ConfigMap lost or deleted (the TrustDomain re-created)
// still yields a sequence above anything published before, as long as the
// clock does not run backwards.
import type { X509Certificate } from '@peculiar/x509';
import { encodeBundleDocument, parseBundleDocument } from './document.ts';

export interface Publication {
  document: string;
  sequence: number;
  /** The document differs from the last one published (Roots, hint, or none before). */
  changed: boolean;
}

const derOf = (c: X509Certificate) => Buffer.from(c.rawData).toString('base64');

export function decidePublication(roots: readonly X509Certificate[], refreshHintSeconds: number, lastDocument: string | undefined, now: Date): Publication {
  let last: { roots: X509Certificate[]; sequence?: number; refreshHintSeconds?: number } | undefined;
  try {
    last = lastDocument === undefined ? undefined : parseBundleDocument(lastDocument);
  } catch {
    last = undefined; // Our own document, damaged by hand: replaced, with a sequence from the clock.
  }
  const same = last !== undefined && last.sequence !== undefined && last.refreshHintSeconds === refreshHintSeconds
    && last.roots.map(derOf).join() === roots.map(derOf).join();
  if (same) return { document: lastDocument!, sequence: last!.sequence!, changed: false };
  const sequence = Math.max((last?.sequence ?? 0) + 1, Math.floor(now.getTime() / 1000));
  return { document: encodeBundleDocument({ roots, sequence, refreshHintSeconds }), sequence, changed: true };
}
