// Strings many cached objects hold are held once: the trust bundle in every
// identity Secret. Measured on the heap, since a string's identity is not
// observable from JavaScript.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Interner, shareBundles } from '../../../src/kube/intern.ts';
import type { Secret } from '../../../src/api/types.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('an equal value comes back as the one held; only the most recent few distinct values are remembered', () => {
  const i = new Interner(2);
  assert.equal(i.intern('a'), 'a');
  assert.equal(i.intern('b'), 'b');
  assert.equal(i.intern('a'), 'a');
  assert.equal(i.intern('c'), 'c');
  assert.equal(i.size, 2, 'b, the least recently seen, was let go');
});

/** Heap growth from holding 2,000 Secrets, each with its own equal copy of a 1.5 KB bundle, with and without the transform. */
function heldBytes(transform?: (s: Secret) => void): number {
  const bundle = Buffer.alloc(1500, 'LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t').toString('base64');
  gc();
  const before = process.memoryUsage().heapUsed;
  const secrets: Secret[] = [];
  for (let n = 0; n < 2000; n++) {
    // A new string each time, as JSON.parse gives each watch event.
    const s = { metadata: { name: `s${n}` }, data: { 'ca.crt': Buffer.from(bundle, 'base64').toString('base64') } } as unknown as Secret;
    transform?.(s);
    secrets.push(s);
  }
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  assert.equal(secrets.length, 2000);
  return grown;
}

test('2,000 Secrets with the same ca.crt hold one copy of it: far less heap than 2,000 copies', () => {
  const copies = heldBytes();
  const shared = heldBytes(shareBundles());
  assert.ok(copies > 2000 * 1500, `2,000 copies take at least 3 MB (${copies} bytes)`);
  assert.ok(shared < copies / 4, `shared: ${shared} bytes, copies: ${copies} bytes`);
});
