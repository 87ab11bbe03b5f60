// Deep equality over JSON values, ignoring key order and undefined fields:
// the test for "would this write change anything?".
export function jsonEqual(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) => {
    if (val && typeof val === 'object' && !Array.isArray(val)) {
      return Object.fromEntries(Object.entries(val as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([x], [y]) => (x < y ? -1 : 1)));
    }
    return val;
  });
}

/** A JSON merge patch turning `prev` into `next` at the top level: removed fields become null, since omission keeps them. */
export function replacingPatch<T extends object>(prev: object | undefined, next: T): T {
  const patch = { ...next } as Record<string, unknown>;
  for (const k of Object.keys(prev ?? {})) if ((next as Record<string, unknown>)[k] === undefined) patch[k] = null;
  return patch as T;
}
