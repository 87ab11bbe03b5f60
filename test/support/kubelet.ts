// What the kubelet does for a pod the webhook injected: project the
// identity's Secret (certificate, key, bundle and policy.json) and federated-bundles.json into one
// directory, and refresh it with an atomic `..data` swap when either changes. Lets the demo and tests
// run real SDK agents on the host against a real API server.
import { mkdir } from 'node:fs/promises';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { writeMountedDir, swapMountedDir } from './sdk-pki.ts';
import { LABEL_TRUST_DOMAIN } from '../../src/api/group.ts';
import { bundleConfigMapName } from '../../src/api/defaults.ts';
import { FILES } from '../../src/api/documents.ts';

export interface Mount { dir: string; stop(): void; synced(): Promise<void> }

export async function mountIdentity(kc: KubeConfig, namespace: string, name: string, dir: string, periodMs = 500): Promise<Mount> {
  const core = kc.makeApiClient(CoreV1Api);
  const read = async () => {
    const s = await core.readNamespacedSecret({ namespace, name: `${name}-identity` });
    const b = (k: string) => Buffer.from(s.data?.[k] ?? '', 'base64').toString('utf8');
    // The webhook's optional source: federated-bundles.json from the trust bundle ConfigMap, when it has one.
    const trustDomain = s.metadata?.labels?.[LABEL_TRUST_DOMAIN];
    // Only a missing ConfigMap projects nothing; any other error keeps the files as they are, as the kubelet does.
    const bundle = trustDomain ? await core.readNamespacedConfigMap({ namespace, name: bundleConfigMapName(trustDomain) }).catch((err: { code?: number }) => {
      if (err.code === 404) return undefined;
      throw err;
    }) : undefined;
    const federated = bundle?.data?.[FILES.federatedBundles];
    return {
      'tls.crt': b('tls.crt'), 'tls.key': b('tls.key'), 'ca.crt': b('ca.crt'), 'policy.json': b('policy.json'),
      ...(federated === undefined ? {} : { [FILES.federatedBundles]: federated }),
    };
  };
  await mkdir(dir, { recursive: true });
  let last = await read();
  await writeMountedDir(dir, last);
  let busy: Promise<void> = Promise.resolve();
  const tick = () => {
    busy = busy.then(async () => {
      const next = await read().catch(() => last);
      if (JSON.stringify(next) !== JSON.stringify(last)) {
        await swapMountedDir(dir, next);
        last = next;
      }
    });
  };
  const timer = setInterval(tick, periodMs);
  return { dir, stop: () => clearInterval(timer), synced: () => { tick(); return busy; } };
}
