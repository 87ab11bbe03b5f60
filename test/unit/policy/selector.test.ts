import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeSelector, matchesSelector, selectorProblem } from '../../../src/policy/selector.ts';
import type { LabelSelector } from '../../../src/policy/types.ts';

describe('matchesSelector (Kubernetes semantics)', () => {
  const labels = { role: 'auditor', tier: 'gold' };
  const cases: [string, LabelSelector, Record<string, string>, boolean][] = [
    ['empty selector matches everything', {}, labels, true],
    ['empty selector matches no labels', {}, {}, true],
    ['matchLabels all equal', { matchLabels: { role: 'auditor', tier: 'gold' } }, labels, true],
    ['matchLabels one differs', { matchLabels: { role: 'auditor', tier: 'silver' } }, labels, false],
    ['matchLabels key absent', { matchLabels: { team: 'x' } }, labels, false],
    ['In with the value', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['silver', 'gold'] }] }, labels, true],
    ['In without the value', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['silver'] }] }, labels, false],
    ['In on an absent key', { matchExpressions: [{ key: 'team', operator: 'In', values: ['x'] }] }, labels, false],
    ['NotIn with another value', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['silver'] }] }, labels, true],
    ['NotIn with the value', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['gold'] }] }, labels, false],
    ['NotIn on an absent key holds', { matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['x'] }] }, labels, true],
    ['Exists', { matchExpressions: [{ key: 'role', operator: 'Exists' }] }, labels, true],
    ['Exists on an absent key', { matchExpressions: [{ key: 'team', operator: 'Exists' }] }, labels, false],
    ['DoesNotExist', { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, labels, true],
    ['DoesNotExist on a present key', { matchExpressions: [{ key: 'role', operator: 'DoesNotExist' }] }, labels, false],
    ['labels and expressions are ANDed', { matchLabels: { role: 'auditor' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['silver'] }] }, labels, false],
    ['a key inherited from Object.prototype is not a label', { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, {}, false],
    ['invalid (In without values) matches nothing', { matchExpressions: [{ key: 'tier', operator: 'In', values: [] }] }, labels, false],
    ['invalid (NotIn without values) matches nothing', { matchExpressions: [{ key: 'tier', operator: 'NotIn' }] }, labels, false],
  ];
  for (const [name, selector, l, expected] of cases) {
    it(name, () => assert.equal(matchesSelector(selector, l), expected));
  }
});

describe('selectorProblem', () => {
  it('accepts a well-formed selector', () => {
    assert.equal(selectorProblem({ matchLabels: { a: 'b' }, matchExpressions: [{ key: 'x', operator: 'Exists' }, { key: 'y', operator: 'In', values: ['1'] }] }), undefined);
  });
  it('names the key and the operator at fault', () => {
    assert.match(selectorProblem({ matchExpressions: [{ key: 'tier', operator: 'In' }] })!, /"tier".*In needs at least one value/);
    assert.match(selectorProblem({ matchExpressions: [{ key: 'x', operator: 'Exists', values: ['a'] }] })!, /"x".*Exists takes no values/);
    assert.match(selectorProblem({ matchExpressions: [{ key: 'x', operator: 'Equals' as 'In', values: ['a'] }] })!, /unknown operator "Equals"/);
  });
});

describe('describeSelector', () => {
  it('prints kubectl-style text with sorted labels and values', () => {
    assert.equal(
      describeSelector({
        matchLabels: { team: 'x', role: 'auditor' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['silver', 'gold'] },
          { key: 'env', operator: 'NotIn', values: ['dev'] },
          { key: 'owner', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      }),
      'role=auditor,team=x,tier in (gold,silver),env notin (dev),owner,!legacy',
    );
  });
  it('is empty for the empty selector', () => assert.equal(describeSelector({}), ''));
});
