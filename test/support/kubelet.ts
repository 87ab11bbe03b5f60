// What the kubelet does for a pod the webhook injected: project the
// identity's Secret (certificate, key, bundle and policy.json) into one
// directory, and refresh it with an atomic `..data` swap when it changes. Lets the demo and tests
// run real SDK agents on the host against a real API server.
import { mkdir } from 'node:fs/promises';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { writeMountedDir, swapMountedDir } from './sdk-pki.ts';

export interface Mount { dir: string; stop(): void; synced(): Promise<void> }

export async function mountIdentity(kc: KubeConfig, namespace: string, name: string, dir: string, periodMs = 500): Promise<Mount> {
  const core = kc.makeApiClient(CoreV1Api);
  const read = async () => {
    const s = await core.readNamespacedSecret({ namespace, name: `${name}-identity` });
    const b = (k: string) => Buffer.from(s.data?.[k] ?? '', 'base64').toString('utf8');
    return { 'tls.crt': b('tls.crt'), 'tls.key': b('tls.key'), 'ca.crt': b('ca.crt'), 'policy.json': b('policy.json') };
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
