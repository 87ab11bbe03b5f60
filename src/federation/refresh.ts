// Whether a fetched bundle replaces the one held, and when to fetch next. Pure.
import type { SpiffeBundle } from './document.ts';

export type Refusal = { reason: 'SequenceWentBackwards' | 'SequenceMissing'; message: string };

/**
 * A bundle is refused when its spiffe_sequence is lower than the one held (a
 * replay of an older document, or a partner whose state went back), or when
 * it has none although the one held had one (it could be such a replay too).
 * An equal sequence is accepted: the partner republished the same bundle.
 */
export function refusal(held: Pick<SpiffeBundle, 'sequence'> | undefined, fetched: Pick<SpiffeBundle, 'sequence'>): Refusal | undefined {
  if (held?.sequence === undefined) return undefined;
  if (fetched.sequence === undefined) return { reason: 'SequenceMissing', message: `the bundle has no spiffe_sequence, and the one held has ${held.sequence}` };
  if (fetched.sequence < held.sequence) return { reason: 'SequenceWentBackwards', message: `the bundle's spiffe_sequence ${fetched.sequence} is lower than the ${held.sequence} held` };
  return undefined;
}

export interface RefreshBounds { minMs: number; maxMs: number }

/** After an accepted bundle: its refresh hint, clamped to the bounds; none given: the maximum. */
export function nextRefreshMs(refreshHintSeconds: number | undefined, b: RefreshBounds): number {
  const hinted = refreshHintSeconds === undefined ? b.maxMs : refreshHintSeconds * 1000;
  return Math.min(b.maxMs, Math.max(b.minMs, hinted));
}
