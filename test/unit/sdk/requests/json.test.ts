import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JsonError, parseStrictJson } from '../../../../src/sdk/requests/json.ts';

const reason = (text: string, depth = 64) => {
  try {
    parseStrictJson(text, depth);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof JsonError, String(err));
    return err.reason;
  }
};

describe('parseStrictJson', () => {
  it('parses what JSON.parse parses, to the same value', () => {
    for (const t of ['{}', '[]', '1', '"x"', 'null', ' {"a":[1,2,{"b":"c\\"}"}],"d":-1.5e3,"e":true} ', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"q":"x"}}}']) {
      assert.deepEqual(parseStrictJson(t, 64), JSON.parse(t), t);
    }
  });

  it('refuses a params.name given twice, however the second is spelled', () => {
    assert.equal(reason('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","name":"delete_all"}}'), 'DuplicateKey');
    assert.equal(reason('{"params":{"name":"search","n\\u0061me":"delete_all"}}'), 'DuplicateKey');
    // The same key in two different objects is fine.
    assert.equal(reason('[{"name":"a"},{"name":"b"}]'), 'ok');
  });

  it('refuses a nesting bomb before building it, without recursion', () => {
    const bomb = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    assert.equal(reason(bomb), 'TooDeep');
    assert.equal(reason('{"a":'.repeat(65) + '1' + '}'.repeat(65)), 'TooDeep');
    assert.equal(reason('{"a":'.repeat(63) + '1' + '}'.repeat(63)), 'ok');
  });

  it('refuses what is not JSON', () => {
    for (const t of ['', 'x', '{', '{"a":1,}', '[1,]', '{"a" 1}', '{"a":1}}', '{"a":1} x', "{'a':1}", '{"a":01}', '[1 2]', '"unterminated', 'tools/call']) {
      assert.equal(reason(t), 'NotJson', t);
    }
  });
});
