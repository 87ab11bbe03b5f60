// A bundle copy someone keeps changing (a namespace user may edit the copy in
// its namespace) is written back at most once per interval. Without a pace the
// operator restores it at the editor's rate: every edit costs a write, its
// watch event and a TrustDomain pass, so one tenant's loop doubles the load it
// puts on the API server and slows issuance for every tenant. The operator's
// own changes (a new bundle, deny list or federated bundles) are never held back: only a write of
// what was already written into that copy is paced.

/** What the operator wants a copy to hold; compared by reference, so shared strings cost no memory. */
export interface CopyContent { bundlePem: string; denyJson: string; federatedJson?: string | undefined }

export class RestorePace {
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #written = new Map<string, CopyContent & { at: number }>();

  constructor(intervalMs: number, now: () => number = () => performance.now()) {
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Milliseconds until `content` may be written into `copy` again; 0: now. */
  wait(copy: string, content: CopyContent): number {
    const last = this.#written.get(copy);
    if (!last || last.bundlePem !== content.bundlePem || last.denyJson !== content.denyJson || last.federatedJson !== content.federatedJson) return 0;
    return Math.max(0, last.at + this.#intervalMs - this.#now());
  }

  /** A write of `content` into `copy` was sent (a conflicting one counts: it reached the API server too). */
  writing(copy: string, content: CopyContent): void {
    const now = this.#now();
    for (const [k, w] of this.#written) if (now - w.at >= this.#intervalMs) this.#written.delete(k);
    this.#written.set(copy, { ...content, at: now });
  }
}
