// The Ready-over-time chart of `make bench-compare`: cumulative Ready count
// against seconds since the creates started, one step line per run, as a
// self-contained SVG (no dependency, opens in any browser).

export interface Series { label: string; points: Array<[number, number]> }

const W = 720, H = 420, L = 60, R = 200, T = 30, B = 50;
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** A "nice" axis end above max: 1, 2 or 5 times a power of ten. */
export function niceCeil(max: number): number {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= max)!;
}

/** Axes from 0 to a nice end for both coordinates, with title, grid, tick labels and axis names: the frame of the x/y charts. */
function axes(title: string, xLabel: string, yLabel: string, series: readonly Series[], fmt: (v: number) => string) {
  const xMax = niceCeil(Math.max(0, ...series.flatMap((s) => s.points.map(([x]) => x))));
  const yMax = niceCeil(Math.max(0, ...series.flatMap((s) => s.points.map(([, y]) => y))));
  const px = (x: number) => L + (x / xMax) * (W - L - R);
  const py = (y: number) => H - B - (y / yMax) * (H - T - B);
  const ticks = (max: number) => Array.from({ length: 6 }, (_, i) => (max * i) / 5);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="18" font-size="14">${esc(title)}</text>`,
    ...ticks(xMax).map((v) => `<line x1="${px(v)}" y1="${T}" x2="${px(v)}" y2="${H - B}" stroke="#eee"/><text x="${px(v)}" y="${H - B + 16}" text-anchor="middle">${fmt(v)}</text>`),
    ...ticks(yMax).map((v) => `<line x1="${L}" y1="${py(v)}" x2="${W - R}" y2="${py(v)}" stroke="#eee"/><text x="${L - 6}" y="${py(v) + 4}" text-anchor="end">${fmt(v)}</text>`),
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  ];
  return { px, py, out };
}

/** Runs of the same label share a colour, so alternating runs of two controllers read as two families. */
export function readyChart(title: string, series: readonly Series[]): string {
  const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
  const { px, py, out } = axes(title, 'seconds since the creates started', 'objects Ready (cumulative)', series, fmt);
  const labels = [...new Set(series.map((s) => s.label))];
  const colour = (label: string) => COLOURS[labels.indexOf(label) % COLOURS.length]!;
  for (const s of series) {
    // A step line: the count holds until the next object turns Ready.
    const d = s.points.map(([x, y], i) => `${i === 0 ? `M${px(x).toFixed(1)},${py(0).toFixed(1)}` : ''}V${py(y).toFixed(1)}H${px(s.points[i + 1]?.[0] ?? x).toFixed(1)}`).join('');
    if (d) out.push(`<path d="${d}" fill="none" stroke="${colour(s.label)}" stroke-width="1.5" stroke-opacity="0.8"><title>${esc(s.label)}</title></path>`);
  }
  labels.forEach((label, i) => out.push(`<rect x="${W - R + 16}" y="${T + i * 20}" width="12" height="12" fill="${colour(label)}"/><text x="${W - R + 34}" y="${T + i * 20 + 10}">${esc(label)}</text>`));
  out.push('</svg>');
  return out.join('\n') + '\n';
}

export interface BarGroup { label: string; values: number[] }

/** Grouped horizontal bars (one group per path, one bar per series), values labelled; for `make bench-proxy`. */
export function barChart(title: string, unit: string, seriesNames: readonly string[], groups: readonly BarGroup[]): string {
  const bar = 14, gap = 14, left = 230, right = 90;
  const height = T + groups.length * (seriesNames.length * bar + gap) + B;
  const xMax = niceCeil(Math.max(0, ...groups.flatMap((g) => g.values.filter(Number.isFinite))));
  const px = (v: number) => left + (v / xMax) * (W - left - right);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${height}" fill="white"/>`,
    `<text x="10" y="18" font-size="14">${esc(title)}</text>`,
    ...Array.from({ length: 6 }, (_, i) => (xMax * i) / 5).map((v) => `<line x1="${px(v)}" y1="${T}" x2="${px(v)}" y2="${height - B}" stroke="#eee"/><text x="${px(v)}" y="${height - B + 16}" text-anchor="middle">${Number(v.toPrecision(3))}</text>`),
    `<text x="${(left + W - right) / 2}" y="${height - 12}" text-anchor="middle">${esc(unit)}</text>`,
  ];
  groups.forEach((g, gi) => {
    const y0 = T + gi * (seriesNames.length * bar + gap);
    out.push(`<text x="${left - 8}" y="${y0 + (seriesNames.length * bar) / 2 + 4}" text-anchor="end">${esc(g.label)}</text>`);
    g.values.forEach((v, si) => {
      if (!Number.isFinite(v)) return;
      const y = y0 + si * bar;
      out.push(`<rect x="${left}" y="${y}" width="${Math.max(0, px(v) - left).toFixed(1)}" height="${bar - 2}" fill="${COLOURS[si % COLOURS.length]}"><title>${esc(`${g.label} ${seriesNames[si]}: ${v}`)}</title></rect>`,
        `<text x="${(px(v) + 4).toFixed(1)}" y="${y + bar - 4}" font-size="10">${Number(v.toPrecision(3))}</text>`);
    });
  });
  seriesNames.forEach((s, i) => out.push(`<rect x="${W - right + 10}" y="${T + i * 18}" width="10" height="10" fill="${COLOURS[i % COLOURS.length]}"/><text x="${W - right + 24}" y="${T + i * 18 + 9}">${esc(s)}</text>`));
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Points joined by lines, each marked and labelled, on linear axes from 0: for `make bench-scale`'s RSS and CPU against N. */
export function lineChart(title: string, xLabel: string, yLabel: string, series: readonly Series[]): string {
  const fmt = (v: number) => String(Number(v.toPrecision(3)));
  const { px, py, out } = axes(title, xLabel, yLabel, series, fmt);
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length) out.push(`<polyline points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}" fill="none" stroke="${colour}" stroke-width="1.5"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${colour}"><title>${esc(`${s.label}: ${fmt(y)} at ${fmt(x)}`)}</title></circle><text x="${(px(x) + 5).toFixed(1)}" y="${(py(y) - 5).toFixed(1)}" font-size="10">${fmt(y)}</text>`);
    out.push(`<rect x="${W - R + 16}" y="${T + i * 20}" width="12" height="12" fill="${colour}"/><text x="${W - R + 34}" y="${T + i * 20 + 10}">${esc(s.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** SVGs stacked into one file, top to bottom. */
export function stack(svgs: readonly string[]): string {
  const inner = svgs.map((svg, i) => svg.replace('<svg ', `<svg y="${i * H}" `)).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H * svgs.length}" viewBox="0 0 ${W} ${H * svgs.length}">\n${inner}</svg>\n`;
}
