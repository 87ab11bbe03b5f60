// Key management and signing for one identity: choose or make the key
// (rotationPolicy) and sign the leaf. PEM out; secret.ts encodes it for the Secret.
import type { KeyRequest } from '../api/defaults.ts';
import type { CA } from '../pki/ca.ts';
import { generateKeyPair, privateKeyToPem, type KeyPair } from '../pki/keys.ts';
import { issueLeaf, type IssuedLeaf, type LeafRequest } from '../pki/leaf.ts';

export type IssueRequest = Pick<LeafRequest, 'spiffeID' | 'dnsNames' | 'durationMs' | 'now'> & { key: KeyRequest };

export interface IssuedIdentity extends IssuedLeaf {
  privateKeyPem: string;
}

export async function issueIdentity(ca: CA, req: IssueRequest, existingKey?: KeyPair): Promise<IssuedIdentity> {
  const reuse = req.key.rotationPolicy === 'Never' && existingKey
    && existingKey.algorithm === req.key.algorithm && existingKey.size === req.key.size;
  const key = reuse ? existingKey : await generateKeyPair(req.key.algorithm, req.key.size);
  const leaf = await issueLeaf(ca, {
    spiffeID: req.spiffeID, dnsNames: req.dnsNames, publicKey: key.publicKey, durationMs: req.durationMs, now: req.now,
  });
  return { ...leaf, privateKeyPem: await privateKeyToPem(key) };
}
