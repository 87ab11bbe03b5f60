// TEST STAND-IN FOR THE KUBELET (its pod certificate manager), not the
// kubelet. It plays the node's side of the PodCertificateRequest API so tests
// run against a real API server without a node: given a node's KubeConfig
// (system:node:<name>, see env.ts createNode), a pod bound to that node and a
// directory, it does what the kubelet does for the pod's podCertificate
// projected source:
//   - generates the key of the source's keyType on "the node" (WebCrypto),
//   - builds the stub PKCS#10 request (empty subject, signed by that key),
//   - creates the PodCertificateRequest AS THE NODE (the API server's Node
//     authorizer and NodeRestriction judge it),
//   - waits for Issued / Denied / Failed,
//   - on Issued writes the credential bundle (PKCS#8 key, then the chain) and
//     the volume's ConfigMap items (ca.crt, policy.json) with the `..data`
//     swap, keeps those ConfigMap items in sync, and
//   - refreshes (a new key, a new request) at status.beginRefreshAt, or
//     earlier when the test's refreshAt hook says so (the API's floor is 1 h).
// It shares no code with the operator: it is the other side of the API.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod, type V1Volume } from '@kubernetes/client-node';
import type { PodCertificateKeyType, PodCertificateRequest } from '../../src/api/types.ts';
import { type MountedFiles, swapMountedDir, writeMountedDir } from './sdk-pki.ts';

x509.cryptoProvider.set(globalThis.crypto);

const PCR = { group: 'certificates.k8s.io', version: 'v1', plural: 'podcertificaterequests' } as const;

/** core/v1 PodCertificateProjection, the fields the stand-in reads. */
export interface PodCertificateSource {
  signerName: string;
  keyType: PodCertificateKeyType;
  maxExpirationSeconds?: number;
  credentialBundlePath?: string;
  userAnnotations?: Record<string, string>;
}

type Algorithms = { generate: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams | webcrypto.Algorithm; sign: webcrypto.Algorithm | webcrypto.EcdsaParams };
const rsa = (modulusLength: number): Algorithms => ({
  generate: { name: 'RSASSA-PKCS1-v1_5', modulusLength, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
  sign: { name: 'RSASSA-PKCS1-v1_5' },
});
const ecdsa = (namedCurve: string, hash: string): Algorithms => ({ generate: { name: 'ECDSA', namedCurve }, sign: { name: 'ECDSA', hash } as webcrypto.EcdsaParams });
const KEY_TYPES: Record<PodCertificateKeyType, Algorithms> = {
  RSA3072: rsa(3072),
  RSA4096: rsa(4096),
  ECDSAP256: ecdsa('P-256', 'SHA-256'),
  ECDSAP384: ecdsa('P-384', 'SHA-384'),
  ECDSAP521: ecdsa('P-521', 'SHA-512'),
  ED25519: { generate: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
};

export interface NewRequest {
  /** The pod as read from the API server (its uid, nodeName and serviceAccountName go into the spec). */
  pod: V1Pod;
  serviceAccountUID: string;
  nodeUID: string;
  source: PodCertificateSource;
}

export interface CreatedRequest {
  request: PodCertificateRequest;
  /** PKCS#8 PEM of the key the request proves possession of; stays "on the node". */
  privateKeyPem: string;
  /** Base64 SPKI of that key, to compare with the issued leaf's. */
  publicKeySpki: string;
}

/**
 * One PodCertificateRequest, as the kubelet makes it: a new key, the stub
 * CSR, the spec from the pod, created with `kc` (the node's credentials).
 * Rejects with the API server's error (e.g. 403 from NodeRestriction).
 */
export async function createPodCertificateRequest(kc: KubeConfig, r: NewRequest): Promise<CreatedRequest> {
  const algorithms = KEY_TYPES[r.source.keyType];
  const keys = await webcrypto.subtle.generateKey(algorithms.generate, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  type CreateParams = Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0];
  // No name: the stub request's subject is empty, as the kubelet's is.
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys: keys as CreateParams['keys'], signingAlgorithm: algorithms.sign as CreateParams['signingAlgorithm'] });
  const spec = {
    signerName: r.source.signerName,
    podName: r.pod.metadata!.name!,
    podUID: r.pod.metadata!.uid!,
    serviceAccountName: r.pod.spec!.serviceAccountName ?? 'default',
    serviceAccountUID: r.serviceAccountUID,
    nodeName: r.pod.spec!.nodeName!,
    nodeUID: r.nodeUID,
    ...(r.source.maxExpirationSeconds !== undefined ? { maxExpirationSeconds: r.source.maxExpirationSeconds } : {}),
    stubPKCS10Request: Buffer.from(csr.rawData).toString('base64'),
    ...(r.source.userAnnotations ? { unverifiedUserAnnotations: r.source.userAnnotations } : {}),
  };
  const body = { apiVersion: `${PCR.group}/${PCR.version}`, kind: 'PodCertificateRequest', metadata: { generateName: `${spec.podName}-` }, spec };
  const request = await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({ ...PCR, namespace: r.pod.metadata!.namespace!, body }) as PodCertificateRequest;
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey);
  return { request, privateKeyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'), publicKeySpki: Buffer.from(spki).toString('base64') };
}

/** The pod's projected volume with a podCertificate source, and that source; undefined when it has none. */
export function podCertificateVolumeOf(pod: V1Pod): { volume: V1Volume; source: PodCertificateSource } | undefined {
  for (const volume of pod.spec?.volumes ?? []) {
    const source = volume.projected?.sources?.find((s) => s.podCertificate)?.podCertificate;
    if (source) return { volume, source: source as PodCertificateSource };
  }
  return undefined;
}

export type PodCertificateOutcome =
  | {
    type: 'Issued';
    request: PodCertificateRequest;
    /** The key's SPKI (base64), for comparing with the leaf's; the key itself is only in the written files. */
    publicKeySpki: string;
    certificateChain: string;
    notBefore: Date;
    beginRefreshAt: Date;
    notAfter: Date;
  }
  | { type: 'Denied' | 'Failed'; request: PodCertificateRequest; reason: string; message: string };

export interface PodKubeletOptions {
  /** The node's KubeConfig (createNode in env.ts): requests are created, and the pod, node and ConfigMaps read, as the node. */
  kc: KubeConfig;
  namespace: string;
  /** A pod bound to that node (spec.nodeName) that the test created. */
  pod: string;
  /** Where the volume's files go (the pod's mount of the projected volume). */
  dir: string;
  /**
   * When to refresh, given the status's beginRefreshAt and the whole outcome;
   * default beginRefreshAt. Return an earlier time to refresh early.
   */
  refreshAt?: (beginRefreshAt: Date, issued: Extract<PodCertificateOutcome, { type: 'Issued' }>) => Date;
  /** How often to look at the request and re-read the ConfigMaps (default 200 ms). */
  pollMs?: number;
  /** Reads the pod's ServiceAccount (for its UID); default kc. */
  serviceAccountReader?: KubeConfig;
}

export interface PodKubelet {
  /** Every request created, in order, as the API server returned it on create. */
  readonly requests: readonly PodCertificateRequest[];
  /** Every answer, in order: one per request that got one. */
  readonly outcomes: readonly PodCertificateOutcome[];
  /** The n-th answer (0-based; default the next one not yet returned by this call); rejects if the stand-in stopped on an error first. */
  outcome(n?: number): Promise<PodCertificateOutcome>;
  /** The error that stopped the loop, if one did. */
  readonly error: Error | undefined;
  /** Stops refreshing and syncing; the files stay. */
  stop(): Promise<void>;
}

/**
 * Starts the stand-in for one pod. It stops by itself after a Denied or
 * Failed answer (the outcome says why) or an error (see `error`).
 */
export async function startPodKubelet(opts: PodKubeletOptions): Promise<PodKubelet> {
  const pollMs = opts.pollMs ?? 200;
  const core = opts.kc.makeApiClient(CoreV1Api);
  const custom = opts.kc.makeApiClient(CustomObjectsApi);
  const saReader = (opts.serviceAccountReader ?? opts.kc).makeApiClient(CoreV1Api);
  const abort = new AbortController();
  const requests: PodCertificateRequest[] = [];
  const outcomes: PodCertificateOutcome[] = [];
  const waiters: (() => void)[] = [];
  let error: Error | undefined;
  let done = false;
  const notify = () => { for (const w of waiters.splice(0)) w(); };

  const pod = await core.readNamespacedPod({ namespace: opts.namespace, name: opts.pod });
  const found = podCertificateVolumeOf(pod);
  if (!found) throw new Error(`pod ${opts.namespace}/${opts.pod} has no projected volume with a podCertificate source`);
  const { volume, source } = found;
  const sa = await saReader.readNamespacedServiceAccount({ namespace: opts.namespace, name: pod.spec!.serviceAccountName ?? 'default' });
  const node = await core.readNode({ name: pod.spec!.nodeName! });
  await mkdir(opts.dir, { recursive: true });

  // The volume's ConfigMap items, as the kubelet projects them (it retries until the Node authorizer's graph knows the pod).
  const readConfigMaps = async (): Promise<MountedFiles> => {
    const files: Record<string, string> = {};
    for (const s of volume.projected!.sources ?? []) {
      if (!s.configMap) continue;
      const optional = s.configMap.optional === true;
      const cm = await core.readNamespacedConfigMap({ namespace: opts.namespace, name: s.configMap.name! }).catch((err: unknown) => {
        if (optional && (err as { code?: number }).code === 404) return undefined;
        throw err;
      });
      // As the kubelet does: an optional source's missing ConfigMap or key projects nothing.
      for (const item of s.configMap.items ?? []) {
        if (optional && cm?.data?.[item.key] === undefined) continue;
        files[item.path] = cm?.data?.[item.key] ?? '';
      }
    }
    return files as MountedFiles;
  };

  // The Node authorizer learns of a new pod (and the ConfigMaps it names) from a watch: a moment of 403 is normal.
  const retrying = async <T>(fn: () => Promise<T>, forMs = 15_000): Promise<T> => {
    const end = Date.now() + forMs;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (Date.now() > end) throw err;
        await sleep(pollMs, undefined, { signal: abort.signal });
      }
    }
  };

  let written: MountedFiles | undefined;
  const write = async (files: MountedFiles) => {
    if (written && JSON.stringify(written) === JSON.stringify(files)) return;
    if (written) await swapMountedDir(opts.dir, files);
    else await writeMountedDir(opts.dir, files);
    written = files;
  };

  const answerOf = async (name: string): Promise<PodCertificateRequest> => {
    for (;;) {
      const pcr = await custom.getNamespacedCustomObject({ ...PCR, namespace: opts.namespace, name }) as PodCertificateRequest;
      if (pcr.status?.conditions?.some((c) => ['Issued', 'Denied', 'Failed'].includes(c.type) && c.status === 'True')) return pcr;
      await sleep(pollMs, undefined, { signal: abort.signal });
    }
  };

  const run = async () => {
    for (;;) {
      const created = await createPodCertificateRequest(opts.kc, { pod, serviceAccountUID: sa.metadata!.uid!, nodeUID: node.metadata!.uid!, source });
      requests.push(created.request);
      const pcr = await answerOf(created.request.metadata.name!);
      const condition = pcr.status!.conditions!.find((c) => c.status === 'True')!;
      if (condition.type !== 'Issued') {
        outcomes.push({ type: condition.type as 'Denied' | 'Failed', request: pcr, reason: condition.reason, message: condition.message });
        return;
      }
      const s = pcr.status!;
      const issued = {
        type: 'Issued' as const, request: pcr, publicKeySpki: created.publicKeySpki, certificateChain: s.certificateChain!,
        notBefore: new Date(s.notBefore!), beginRefreshAt: new Date(s.beginRefreshAt!), notAfter: new Date(s.notAfter!),
      };
      const credentials = { [source.credentialBundlePath ?? 'credential-bundle.pem']: `${created.privateKeyPem.trim()}\n${s.certificateChain!}` };
      await write({ ...(await retrying(readConfigMaps)), ...credentials } as MountedFiles);
      outcomes.push(issued);
      notify();
      // Until the refresh: keep the ConfigMap items current (a new bundle, a new policy), as the kubelet does.
      const refreshAt = (opts.refreshAt ?? ((at: Date) => at))(issued.beginRefreshAt, issued);
      while (Date.now() < refreshAt.getTime()) {
        await sleep(Math.min(pollMs, Math.max(0, refreshAt.getTime() - Date.now())), undefined, { signal: abort.signal });
        const configMaps = await readConfigMaps().catch(() => undefined);
        if (configMaps) await write({ ...configMaps, ...credentials } as MountedFiles);
      }
    }
  };

  const loop = run().catch((err: Error) => {
    if (!abort.signal.aborted) error = err;
  }).finally(() => { done = true; notify(); });

  let returned = 0;
  return {
    requests,
    outcomes,
    get error() { return error; },
    async outcome(n?: number) {
      const index = n ?? returned;
      if (n === undefined) returned++;
      while (outcomes.length <= index) {
        if (done) throw error ?? new Error(`the stand-in kubelet stopped after ${outcomes.length} answers, before answer ${index}`);
        await new Promise<void>((res) => waiters.push(res));
      }
      return outcomes[index]!;
    },
    async stop() {
      abort.abort();
      await loop;
    },
  };
}
