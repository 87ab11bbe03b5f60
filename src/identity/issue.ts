// Key management and signing for one identity: choose or make the key
// (rotationPolicy), sign the leaf, and hand back Secret-ready data.
import type { KeyRequest } from '../api/defaults.ts';
import type { CA } from '../pki/ca.ts';
import { generateKeyPair, privateKeyToPem, type KeyPair } from '../pki/keys.ts';
import { issueLeaf } from '../pki/leaf.ts';
import { SpiffeID } from '../pki/spiffeid.ts';
import type { IssuedData } from './secret.ts';

export interface IssueRequest {
  spiffeID: string;
  dnsNames: string[];
  key: KeyRequest;
  durationMs: number;
  now: Date;
  reason: string;
  root: string;
  renewalRequest?: string;
}

export async function issueIdentity(ca: CA, req: IssueRequest, existingKey?: KeyPair): Promise<IssuedData & { notBefore: Date }> {
  const reuse = req.key.rotationPolicy === 'Never' && existingKey
    && existingKey.algorithm === req.key.algorithm && existingKey.size === req.key.size;
  const key = reuse ? existingKey : await generateKeyPair(req.key.algorithm, req.key.size);
  const leaf = await issueLeaf(ca, {
    spiffeID: SpiffeID.parse(req.spiffeID), dnsNames: req.dnsNames, publicKey: key.publicKey,
    durationMs: req.durationMs, now: req.now,
  });
  return {
    certificate: Buffer.from(leaf.certificatePem).toString('base64'),
    privateKey: Buffer.from(await privateKeyToPem(key)).toString('base64'),
    spiffeID: req.spiffeID,
    serialNumber: leaf.serialNumber,
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    reason: req.reason,
    root: req.root,
    renewalRequest: req.renewalRequest,
  };
}
