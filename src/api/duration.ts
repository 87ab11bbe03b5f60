// Go-style duration strings ("24h", "1h30m", "90s", "1.5h"), the format
// Kubernetes users already know from cert-manager and metav1.Duration.
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;

/** Milliseconds in a Go duration string; throws on anything else. */
export function parseDuration(s: string): number {
  if (s === '0') return 0;
  const neg = s.startsWith('-');
  const body = neg || s.startsWith('+') ? s.slice(1) : s;
  if (body === '') throw new Error(`invalid duration "${s}"`);
  PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let m = PART.exec(body); m; m = PART.exec(body)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    consumed = PART.lastIndex;
  }
  if (consumed !== body.length) throw new Error(`invalid duration "${s}": use a number and a unit such as 90s, 10m or 24h`);
  return neg ? -total : total;
}

/** Renders milliseconds the way Go's time.Duration.String() does, trimmed of zero parts ("1h30m", "45s"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  const h = Math.floor(rest / 3_600_000); rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000); rest -= m * 60_000;
  const s = rest / 1000;
  return sign + (h ? `${h}h` : '') + (m ? `${m}m` : '') + (s ? `${Number(s.toFixed(3))}s` : '');
}
