// The one shape of "an ordered list of small checks, the first violation
// wins" (cert-manager's policy chain): why an identity needs a certificate,
// why the webhook's serving certificate does, why a pod is refused. The
// first violation's reason becomes the condition reason, the event reason or
// the admission denial; its message is what a person reads.

export interface Violation<R extends string = string> {
  reason: R;
  message: string;
}

/** One check over the input gathered once for the whole chain; undefined when it is satisfied. */
export type Check<I, R extends string = string> = (input: I) => Violation<R> | undefined;

/** The first check that is violated, in order, or undefined when every check is satisfied. */
export function firstViolation<I, R extends string>(checks: readonly Check<I, R>[], input: I): Violation<R> | undefined {
  for (const check of checks) {
    const v = check(input);
    if (v) return v;
  }
  return undefined;
}
