import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PkiError } from '../../../src/pki/errors.ts';
import { isValidTrustDomainName, renderSpiffeID, SpiffeID } from '../../../src/pki/spiffeid.ts';

function assertInvalid(fn: () => unknown, reason: string, message?: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('SpiffeID.parse', () => {
  const valid: [string, string, string][] = [
    ['spiffe://cluster.local/ns/agents/agent/planner', 'cluster.local', '/ns/agents/agent/planner'],
    ['spiffe://cluster.local', 'cluster.local', ''],
    ['spiffe://a-b_c.9/x', 'a-b_c.9', '/x'],
    ['spiffe://td/Mixed.Case-segment_1/..a/.b', 'td', '/Mixed.Case-segment_1/..a/.b'],
    [`spiffe://${'t'.repeat(255)}`, 't'.repeat(255), ''],
    [`spiffe://td/${'p'.repeat(2048 - 'spiffe://td/'.length)}`, 'td', `/${'p'.repeat(2048 - 'spiffe://td/'.length)}`],
  ];
  for (const [id, td, path] of valid) {
    it(`accepts ${id.length > 60 ? `${id.slice(0, 40)}… (${id.length} chars)` : id}`, () => {
      const parsed = SpiffeID.parse(id);
      assert.equal(parsed.trustDomain, td);
      assert.equal(parsed.path, path);
      assert.equal(parsed.toString(), id);
    });
  }

  // One row per class of invalid ID in the SPIFFE-ID spec, with the reason we expect to read.
  const invalid: [string, string, RegExp][] = [
    ['empty', '', /cannot be empty/],
    ['missing scheme', 'cluster.local/ns/a', /scheme/],
    ['wrong scheme', 'https://cluster.local/ns/a', /scheme/],
    ['uppercase scheme', 'SPIFFE://cluster.local/ns/a', /scheme/],
    ['missing trust domain', 'spiffe:///ns/a', /trust domain is missing/],
    ['uppercase trust domain', 'spiffe://Cluster.local/ns/a', /trust domain characters/],
    ['bad trust domain char', 'spiffe://clu$ter/ns/a', /trust domain characters/],
    ['trust domain too long', `spiffe://${'t'.repeat(256)}`, /longer than 255/],
    ['port', 'spiffe://cluster.local:8443/ns/a', /port/],
    ['userinfo', 'spiffe://user@cluster.local/ns/a', /userinfo/],
    ['query', 'spiffe://cluster.local/ns/a?x=1', /query/],
    ['fragment', 'spiffe://cluster.local/ns/a#frag', /fragment/],
    ['empty segment', 'spiffe://cluster.local/ns//a', /empty segments/],
    ['dot segment', 'spiffe://cluster.local/ns/./a', /dot segments/],
    ['dot-dot segment', 'spiffe://cluster.local/ns/../a', /dot segments/],
    ['trailing slash', 'spiffe://cluster.local/ns/a/', /trailing slash/],
    ['root path only', 'spiffe://cluster.local/', /trailing slash/],
    ['bad path char', 'spiffe://cluster.local/ns/a%20b', /path segment characters/],
    ['non-ASCII path', 'spiffe://cluster.local/ns/agént', /path segment characters/],
    ['too long', `spiffe://td/${'p'.repeat(2048)}`, /longer than 2048/],
  ];
  for (const [name, id, message] of invalid) {
    it(`rejects ${name}`, () => assertInvalid(() => SpiffeID.parse(id), 'InvalidSpiffeID', message));
  }

  it('rejects non-strings with PkiError rather than a TypeError', () => {
    assertInvalid(() => SpiffeID.parse(undefined as unknown as string), 'InvalidSpiffeID');
  });

  it('keeps long input out of the message', () => {
    assertInvalid(() => SpiffeID.parse(`https://${'x'.repeat(5000)}`), 'InvalidSpiffeID', /^.{0,200}$/);
  });
});

describe('SpiffeID.fromParts, equals, memberOf', () => {
  it('builds the same ID parse would', () => {
    const id = SpiffeID.fromParts('cluster.local', '/ns/a/agent/b');
    assert.ok(id.equals(SpiffeID.parse('spiffe://cluster.local/ns/a/agent/b')));
    assert.ok(!id.equals(SpiffeID.parse('spiffe://cluster.local/ns/a/agent/c')));
    assert.ok(id.memberOf('cluster.local'));
    assert.ok(!id.memberOf('partner.example'));
    assert.equal(SpiffeID.fromParts('cluster.local', '').toString(), 'spiffe://cluster.local');
  });

  it('validates both parts', () => {
    assertInvalid(() => SpiffeID.fromParts('Bad', '/x'), 'InvalidSpiffeID', /trust domain characters/);
    assertInvalid(() => SpiffeID.fromParts('td', 'no-leading-slash'), 'InvalidSpiffeID', /leading slash/);
    assertInvalid(() => SpiffeID.fromParts('td', `/${'p'.repeat(2048)}`), 'InvalidSpiffeID', /longer than 2048/);
  });
});

describe('isValidTrustDomainName', () => {
  for (const td of ['cluster.local', 'a', 'x_y-z.0', 't'.repeat(255)]) {
    it(`accepts ${td.slice(0, 30)}`, () => assert.equal(isValidTrustDomainName(td), true));
  }
  for (const td of ['', 'Cluster.local', 'a:1', 'a/b', 'a b', 't'.repeat(256), 'spiffe://a']) {
    it(`rejects ${JSON.stringify(td.slice(0, 30))}`, () => assert.equal(isValidTrustDomainName(td), false));
  }
});

describe('renderSpiffeID', () => {
  const vars = { namespace: 'agents', name: 'planner', serviceAccount: 'planner-sa' };

  it('renders the default template', () => {
    assert.equal(renderSpiffeID('cluster.local', 'ns/{namespace}/agent/{name}', vars).toString(), 'spiffe://cluster.local/ns/agents/agent/planner');
  });

  it('accepts a leading slash and every variable, repeated and inside a segment', () => {
    const id = renderSpiffeID('td', '/ns/{namespace}/sa/{serviceAccount}/{name}.{name}', vars);
    assert.equal(id.toString(), 'spiffe://td/ns/agents/sa/planner-sa/planner.planner');
  });

  it('rejects an unknown placeholder, naming it', () => {
    assertInvalid(() => renderSpiffeID('td', 'ns/{namespace}/pod/{pod}', vars), 'InvalidTemplate', /\{pod\}/);
    assertInvalid(() => renderSpiffeID('td', 'x/{toString}', vars), 'InvalidTemplate', /\{toString\}/);
  });

  it('rejects unbalanced braces', () => {
    assertInvalid(() => renderSpiffeID('td', 'ns/{namespace', vars), 'InvalidTemplate', /brace/);
    assertInvalid(() => renderSpiffeID('td', 'ns/namespace}', vars), 'InvalidTemplate', /brace/);
  });

  it('never lets a value add segments or escape its segment', () => {
    assertInvalid(() => renderSpiffeID('td', 'ns/{namespace}', { ...vars, namespace: 'a/b' }), 'InvalidSpiffeID', /\{namespace\}/);
    assertInvalid(() => renderSpiffeID('td', 'ns/{namespace}', { ...vars, namespace: '' }), 'InvalidSpiffeID', /\{namespace\}/);
  });

  it('still applies the SPIFFE-ID rules to the result', () => {
    assertInvalid(() => renderSpiffeID('td', 'ns/{namespace}/', vars), 'InvalidSpiffeID', /trailing slash/);
    assertInvalid(() => renderSpiffeID('td', 'ns/{name}/..', vars), 'InvalidSpiffeID', /dot segments/);
    assertInvalid(() => renderSpiffeID('Not.Valid', '{name}', vars), 'InvalidSpiffeID', /trust domain/);
  });
});
