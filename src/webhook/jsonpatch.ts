// RFC 6902 JSON Patch operations, as AdmissionReview responses carry them,
// and RFC 6901 pointers into the pod.

export type JSONPatchOp =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown };

/** A JSON Pointer from path segments: `~` and `/` inside a segment are escaped (annotation keys contain `/`). */
export function pointer(...segments: (string | number)[]): string {
  return segments.map((s) => `/${String(s).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/** Stable JSON (sorted keys), so "the same object" does not depend on field order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v);
}

export function sameJSON(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}
