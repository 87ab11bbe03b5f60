// Kubernetes label selectors: matching (apimachinery's LabelSelectorAsSelector
// semantics) and the string form kubectl prints, used in rule texts.
import type { LabelSelector, LabelSelectorRequirement } from './types.ts';

/**
 * Why a selector is invalid, or undefined. In and NotIn need values; Exists
 * and DoesNotExist must have none (as the API server validates).
 */
export function selectorProblem(selector: LabelSelector): string | undefined {
  for (const req of selector.matchExpressions ?? []) {
    const n = req.values?.length ?? 0;
    switch (req.operator) {
      case 'In':
      case 'NotIn':
        if (n === 0) return `matchExpressions key ${JSON.stringify(req.key)}: operator ${req.operator} needs at least one value`;
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (n > 0) return `matchExpressions key ${JSON.stringify(req.key)}: operator ${req.operator} takes no values`;
        break;
      default:
        return `matchExpressions key ${JSON.stringify(req.key)}: unknown operator ${JSON.stringify(String(req.operator))}`;
    }
  }
  return undefined;
}

function requirementMatches(req: LabelSelectorRequirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, req.key);
  switch (req.operator) {
    case 'In':
      return has && (req.values ?? []).includes(labels[req.key]!);
    case 'NotIn':
      // As in Kubernetes: an absent key satisfies NotIn.
      return !has || !(req.values ?? []).includes(labels[req.key]!);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/**
 * Kubernetes semantics: every matchLabels pair and every expression must
 * hold; `{}` matches everything. An invalid selector matches nothing, so a
 * mistake in a policy can only ever narrow it.
 */
export function matchesSelector(selector: LabelSelector, labels: Record<string, string>): boolean {
  if (selectorProblem(selector) !== undefined) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (!Object.hasOwn(labels, key) || labels[key] !== value) return false;
  }
  return (selector.matchExpressions ?? []).every((req) => requirementMatches(req, labels));
}

export function isEmptySelector(selector: LabelSelector): boolean {
  return Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0;
}

/** kubectl's form, e.g. "role=auditor,tier in (a,b),!legacy"; '' for the empty selector. */
export function describeSelector(selector: LabelSelector): string {
  const parts = Object.entries(selector.matchLabels ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  for (const req of selector.matchExpressions ?? []) {
    const values = [...(req.values ?? [])].sort().join(',');
    switch (req.operator) {
      case 'In':
        parts.push(`${req.key} in (${values})`);
        break;
      case 'NotIn':
        parts.push(`${req.key} notin (${values})`);
        break;
      case 'Exists':
        parts.push(req.key);
        break;
      case 'DoesNotExist':
        parts.push(`!${req.key}`);
        break;
    }
  }
  return parts.join(',');
}
