// One copy of a string many cached objects hold: every identity Secret's
// ca.crt is the same trust bundle, parsed out of each watch event as a string
// of its own (2,000 identities held 2,000 equal copies, about 1.5 KB each).
import { SECRET_BUNDLE } from '../api/group.ts';
import type { Secret } from '../api/types.ts';

// An Interner hands back the copy it already has. It remembers only the few
// values most recently seen (a root rotation has two bundles in flight), so a
// value nobody holds any more is let go.
export class Interner {
  readonly #max: number;
  /** value → the same value, most recently used last. */
  readonly #values = new Map<string, string>();

  constructor(max = 8) {
    this.#max = max;
  }

  /** Distinct values remembered (tests). */
  get size(): number {
    return this.#values.size;
  }

  intern(value: string): string {
    const held = this.#values.get(value);
    this.#values.delete(value);
    this.#values.set(value, held ?? value);
    if (this.#values.size > this.#max) this.#values.delete(this.#values.keys().next().value!);
    return held ?? value;
  }
}

/** An informer transform that makes the Secrets it sees share their ca.crt with earlier Secrets that hold the same bundle. */
export function shareBundles(bundles = new Interner()): (s: Secret) => void {
  return (s) => {
    const b = s.data?.[SECRET_BUNDLE];
    if (b) s.data![SECRET_BUNDLE] = bundles.intern(b);
  };
}
