// The one pattern syntax of narrowing rules, for paths and names alike: `*`
// stands for any run of characters (none, or many, `/` included); every
// other character compares exactly, code point by code point. So `search`
// is not `ѕearch` (Cyrillic ѕ), `/mcp` is only /mcp, `/api/*` is everything
// under /api/, and `files_*` is every tool whose name starts with files_.

export type Matcher = (value: string) => boolean;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** A matcher for any of `patterns`: exact names in a Set, the ones with `*` as one anchored expression. */
export function matcher(patterns: readonly string[]): Matcher {
  const exact = new Set(patterns.filter((p) => !p.includes('*')));
  const globs = patterns.filter((p) => p.includes('*'));
  if (globs.includes('*')) return () => true;
  if (globs.length === 0) return (v) => exact.has(v);
  // `u`: one code point per `.`; `s`: `.` also matches line breaks.
  const re = new RegExp(`^(?:${globs.map((g) => g.split('*').map(escape).join('.*')).join('|')})$`, 'su');
  return (v) => exact.has(v) || re.test(v);
}
