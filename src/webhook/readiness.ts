// When a replica is Ready: a pure decision over what it serves and what the
// API server trusts. A replica is Ready only when its webhook serves a
// certificate that every webhook's caBundle verifies (and, on the leader,
// its caches synced). Only then is it an endpoint of the webhook Service, so
// an admission call never reaches a replica that cannot finish a handshake.
//
// How a replica learns the caBundle: it GETs the two webhook configurations
// the leader's manager keeps current, on the same poll as its serving
// Secret (server.ts; RBAC: get on those two names only, which the chart's
// ClusterRole already grants for the manager, on every replica's
// ServiceAccount). A GET, not a watch: a watch needs list and watch on the
// whole resource, and a few seconds of staleness is harmless here because a
// CA rotation is ordered so that no replica ever has to become unready:
//   1. the new CA joins caBundle (the old one still signs);
//   2. only after the propagation delay (1 m) is a serving certificate signed
//      by the new CA; both CAs are in caBundle, so old and new certificates verify;
//   3. the old CA leaves caBundle only after the grace period (2 m) from that
//      certificate, far longer than the poll (10 s), so every replica has
//      loaded the new certificate by then.
// A replica reads its Secret before the configurations, so it never judges
// an old certificate against a newer caBundle than the certificate it could
// already have loaded. Only a CA that expired (replaced at once, nothing
// could verify the old one anyway) leaves replicas unready, for one poll.
import { parseCertificates } from '../pki/parse.ts';
import { verifyChain } from '../pki/verify.ts';

export type Readiness = { ready: true } | { ready: false; reason: string };

export const READY: Readiness = { ready: true };
export const notReady = (reason: string): Readiness => ({ ready: false, reason });

/** One webhook of a configuration, as the API server will call it. */
export interface CaBundleOf {
  /** `<kind>/<name>: <webhook>`, for the reason a replica is not ready. */
  webhook: string;
  /** Base64, as stored in clientConfig.caBundle. */
  caBundle?: string | undefined;
}

/**
 * Whether every webhook's caBundle verifies the certificate being served.
 * No configuration at all means nothing calls the webhook: a replica with a
 * certificate is then Ready (deleting the configurations in an emergency
 * must not take every replica out of its Services).
 */
export async function servingTrusted(servingPem: string | undefined, webhooks: CaBundleOf[], now: Date): Promise<Readiness> {
  if (!servingPem) return notReady('the webhook has no serving certificate yet');
  let leaf: ReturnType<typeof parseCertificates>;
  try {
    leaf = parseCertificates(servingPem);
  } catch {
    return notReady('the serving certificate cannot be parsed');
  }
  // Most webhooks share one caBundle: verify each distinct one once.
  const verdicts = new Map<string, Promise<string | undefined>>();
  for (const w of webhooks) {
    const bundle = w.caBundle ?? '';
    if (!verdicts.has(bundle)) verdicts.set(bundle, bundleProblem(leaf, bundle, now));
    const problem = await verdicts.get(bundle);
    if (problem) return notReady(`${w.webhook}: ${problem}`);
  }
  return READY;
}

async function bundleProblem(leaf: ReturnType<typeof parseCertificates>, caBundle: string, now: Date): Promise<string | undefined> {
  const pem = Buffer.from(caBundle, 'base64').toString('utf8');
  if (pem.trim() === '') return 'caBundle is empty';
  let roots: ReturnType<typeof parseCertificates>;
  try {
    roots = parseCertificates(pem);
  } catch {
    return 'caBundle cannot be parsed';
  }
  const v = await verifyChain(leaf, roots, now);
  return v.ok ? undefined : `caBundle does not verify the serving certificate: ${v.reason}`;
}

export interface ReplicaState {
  /** SIGTERM arrived: out of the Services first, then drain (SHUTDOWN_DRAIN_MS), then close. */
  shuttingDown: boolean;
  /** The webhook's own verdict; undefined when this replica serves no webhook. */
  webhook?: Readiness | undefined;
  /** Undefined when this replica does not reconcile (a follower). */
  cachesSynced?: boolean | undefined;
}

/** /readyz: every replica serves admission; the leader also has to have its caches synced. */
export function replicaReadiness(s: ReplicaState): Readiness {
  if (s.shuttingDown) return notReady('shutting down');
  if (s.webhook && !s.webhook.ready) return s.webhook;
  if (s.cachesSynced === false) return notReady('caches not synced');
  return READY;
}

/**
 * How long a replica keeps serving after SIGTERM while it reports not ready,
 * like a pod's preStop sleep: the EndpointSlice controller and kube-proxy
 * (or the API server's own endpoint resolution) need a few seconds to stop
 * sending new connections to a terminating pod, and admission calls already
 * on their way must still be answered. 5 s covers that in a healthy cluster
 * and leaves the rest of the 20 s shutdown budget (terminationGracePeriod 30 s)
 * to stop the controllers, which happens during the drain, not after it.
 */
export const SHUTDOWN_DRAIN_MS = 5000;
