// Plain-text tables for people; `-o json` is the format for scripts.
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** "in 3h12m" / "5m ago": how far a timestamp is from now, for a table cell. */
export function relative(iso: string | undefined, now: Date): string {
  if (!iso) return '-';
  const ms = new Date(iso).getTime() - now.getTime();
  const abs = Math.abs(ms);
  const s = Math.floor(abs / 1000);
  const text = s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : s < 172_800 ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m` : `${Math.floor(s / 86400)}d`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}
