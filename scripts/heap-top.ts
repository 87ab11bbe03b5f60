// Shallow sizes of a V8 heap snapshot, summed by node type and constructor
// name, biggest first; and what the biggest strings start with (Secret data,
// managedFields, ...). Usage: node scripts/heap-top.ts FILE [rows=25]
import { readFileSync } from 'node:fs';

const [file, rowsArg = '25'] = process.argv.slice(2);
const snap = JSON.parse(readFileSync(file!, 'utf8')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
const f = snap.snapshot.meta.node_fields;
const [T, N, S, W] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size'), f.length];
const types = snap.snapshot.meta.node_types[0];
const by = new Map<string, { count: number; bytes: number }>();
const strings = new Map<string, { count: number; bytes: number }>();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += W) {
  const type = types[snap.nodes[i + T]!]!;
  const name = snap.strings[snap.nodes[i + N]!]!;
  const size = snap.nodes[i + S]!;
  total += size;
  const key = type === 'object' || type === 'closure' ? `${type} ${name}` : type;
  const e = by.get(key) ?? { count: 0, bytes: 0 };
  by.set(key, { count: e.count + 1, bytes: e.bytes + size });
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string') {
    const head = name.slice(0, 24).replace(/\s+/g, ' ');
    const g = strings.get(head) ?? { count: 0, bytes: 0 };
    strings.set(head, { count: g.count + 1, bytes: g.bytes + size });
  }
}
const top = (m: Map<string, { count: number; bytes: number }>) => [...m].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(rowsArg))
  .map(([k, v]) => `${(v.bytes / 1048576).toFixed(2).padStart(8)} MB ${String(v.count).padStart(8)}  ${k}`).join('\n');
console.log(`total ${(total / 1048576).toFixed(1)} MB\n${top(by)}\n\nstrings by first 24 characters:\n${top(strings)}`);
