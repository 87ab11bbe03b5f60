// What an informer does after its list or watch failed: how long to wait,
// whether this is news worth a warning, and a line that says what to do.
// Pure, so the whole policy is table-tested; informer.ts only does the I/O.
import { backoffDelay, type Backoff } from './backoff.ts';
import { toKubeError } from './errors.ts';

// client-go's reflector backs off from 800 ms to 30 s; we start a little
// sooner. ±20% jitter keeps five informers (and replicas) that lost the same
// API server from retrying in lockstep.
export const RESTART_BACKOFF: Backoff = { baseMs: 500, maxMs: 30_000, jitter: 0.2 };

export type Cause = 'NotInstalled' | 'Unreachable' | 'Forbidden' | 'Failed';

export interface RestartState {
  /** Failed attempts since the watch was last healthy. */
  failures: number;
  /** The cause already announced at warn in this outage. */
  announced?: Cause;
}

export const HEALTHY: RestartState = { failures: 0 };

/** How the attempt that just failed went. */
export interface Attempt {
  ranMs: number;
  /** The watch delivered events after its list (its resourceVersion moved). */
  gotEvents: boolean;
}

export interface Where {
  /** The informer's URL path, e.g. /apis/agentidentity.dev/v1alpha1/agentidentities. */
  path: string;
  server: string;
}

export interface Restart {
  state: RestartState;
  cause: Cause;
  delayMs: number;
  level: 'warn' | 'debug';
  message: string;
}

/** The CRD name (plural.group) a path under /apis/ names; undefined for core resources. */
export function crdOf(path: string): string | undefined {
  const m = /^\/apis\/([^/]+)\/[^/]+\/(?:namespaces\/[^/]+\/)?([^/]+)$/.exec(path);
  return m ? `${m[2]}.${m[1]}` : undefined;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))}s`;
}

export function planRestart(state: RestartState, err: unknown, attempt: Attempt, where: Where, backoff: Backoff = RESTART_BACKOFF, random: () => number = Math.random): Restart {
  // A watch that ran for longer than the longest delay, or saw events, was
  // healthy: this failure starts a new outage, from the shortest delay.
  const prior = attempt.gotEvents || attempt.ranMs >= backoff.maxMs ? HEALTHY : state;
  const failures = prior.failures + 1;
  const delayMs = backoffDelay(failures, backoff, random);
  const e = toKubeError(err);
  const crd = crdOf(where.path);
  const [cause, message]: [Cause, string] =
    e.code === 404 && crd ? ['NotInstalled', `CRD ${crd} is not installed: run \`make install\` or apply crds/ (retrying with backoff)`]
    : e.code === 0 ? ['Unreachable', `API server unreachable at ${where.server}: ${e.reason}; retrying in ${seconds(delayMs)}`]
    : e.code === 401 || e.code === 403 ? ['Forbidden', `not allowed to list and watch ${where.path} (HTTP ${e.code}: ${e.message}): check the operator's credentials and RBAC; retrying in ${seconds(delayMs)}`]
    : ['Failed', `watch of ${where.path} failed (HTTP ${e.code}: ${e.message}); retrying in ${seconds(delayMs)}`];
  // Once per outage and cause at warn; the retries that follow add nothing new.
  const level = prior.announced === cause ? 'debug' : 'warn';
  return { state: { failures, announced: cause }, cause, delayMs, level, message };
}
