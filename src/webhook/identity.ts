// When an AgentIdentity is created, or its spec changes → refuse it if
//   - its TrustDomain does not admit its namespace (spec.namespaceSelector)
//     or one of its dnsNames (spec.dnsNames): policy/tenancy.ts decides;
//   - its Secret is already another identity's: named by another
//     AgentIdentity of the namespace, or owned by something else.
// Lookups are injected, as in admission.ts. The identity reconciler makes the
// same tenancy decision, so an identity that got past an absent webhook is
// still never issued.
import { firstViolation, type Check, type Violation } from '../controller/checks.ts';
import { secretNameOf, trustDomainOf } from '../api/defaults.ts';
import type { AgentIdentity, ObjectMeta, TrustDomain } from '../api/types.ts';
import { admitsEveryNamespace, tenancyViolation } from '../policy/tenancy.ts';
import { identitySecretName } from './delivery.ts';
import { claimantsOf } from './related.ts';
import { type AdmissionRequest, allow, badNamespace, deny, type IdentityLookup, lookupFailed, type Outcome } from './admission.ts';

export interface IdentityAdmissionOptions {
  identities: IdentityLookup;
  /** Undefined only when the API server answered 404. */
  trustDomain(name: string): Promise<TrustDomain | undefined>;
  namespaceLabels(name: string): Promise<Record<string, string> | undefined>;
  /** The Secret's metadata, never its data; undefined when it does not exist. */
  secretMetadata(namespace: string, name: string): Promise<ObjectMeta | undefined>;
}

export type SecretClaimReason = 'SecretNameInUse' | 'SecretOwnedByAnother';

/** What the claim checks judge: the identity, the other AgentIdentities of its namespace, and its Secret's metadata if it exists. */
interface SecretClaim {
  identity: AgentIdentity;
  others: readonly AgentIdentity[];
  secret: ObjectMeta | undefined;
}

const nameInUse: Check<SecretClaim, SecretClaimReason> = ({ identity, others }) => {
  const secretName = secretNameOf(identity);
  // status.secretName too: after a rename the old Secret may still exist for a moment.
  const claimant = others.find((o) => o.metadata.name !== identity.metadata.name && (identitySecretName(o) === secretName || o.status?.secretName === secretName));
  if (!claimant) return undefined;
  return {
    reason: 'SecretNameInUse',
    message: `Secret "${secretName}" is the Secret of AgentIdentity "${claimant.metadata.name}" in namespace "${identity.metadata.namespace}"; two identities cannot share a Secret, so set spec.secretName to another name`,
  };
};

const ownedByAnother: Check<SecretClaim, SecretClaimReason> = ({ identity, secret }) => {
  const owner = secret?.ownerReferences?.find((o) => o.controller);
  // The same name with another uid is this identity deleted and re-created: its old Secret is on its way out.
  if (!owner || (owner.kind === 'AgentIdentity' && owner.name === identity.metadata.name)) return undefined;
  return {
    reason: 'SecretOwnedByAnother',
    message: `Secret "${secretNameOf(identity)}" in namespace "${identity.metadata.namespace}" belongs to ${owner.kind} "${owner.name}"; set spec.secretName to another name`,
  };
};

/** Two identities writing one Secret would overwrite each other's key: the first to claim a name keeps it. */
export function secretClaimDenial(identity: AgentIdentity, others: readonly AgentIdentity[], secret: ObjectMeta | undefined): Violation<SecretClaimReason> | undefined {
  return firstViolation([nameInUse, ownedByAnother], { identity, others, secret });
}

function identityOf(req: AdmissionRequest): AgentIdentity | undefined {
  if (req.kind?.kind !== 'AgentIdentity' || !req.namespace) return undefined;
  const identity = req.object as AgentIdentity | undefined;
  // metadata.namespace may still be empty at admission; the request's is the one it will have.
  return identity?.spec ? { ...identity, metadata: { ...identity.metadata, namespace: req.namespace } } : undefined;
}

/** Unchanged spec (a finalizer, a label): nothing this rule judges has moved. The configurations never send these. */
function specUnchanged(req: AdmissionRequest, identity: AgentIdentity): boolean {
  return req.operation === 'UPDATE' && JSON.stringify((req.oldObject as AgentIdentity | undefined)?.spec) === JSON.stringify(identity.spec);
}

export async function validateIdentity(req: AdmissionRequest, opts: IdentityAdmissionOptions): Promise<Outcome> {
  const identity = identityOf(req);
  if (!identity || specUnchanged(req, identity)) return allow(req.uid);
  const refused = badNamespace(req);
  if (refused) return refused;
  const namespace = req.namespace!;
  const subject = `AgentIdentity "${identity.metadata.name}"`;
  const tdName = trustDomainOf(identity);

  let td: TrustDomain | undefined;
  let labels: Record<string, string> | undefined;
  try {
    td = await opts.trustDomain(tdName);
  } catch (err) {
    return lookupFailed(req.uid, `could not read TrustDomain "${tdName}"`, err, subject);
  }
  if (td && !admitsEveryNamespace(td)) {
    try {
      labels = await opts.namespaceLabels(namespace);
    } catch (err) {
      return lookupFailed(req.uid, `could not read namespace "${namespace}"`, err, subject);
    }
  }
  const violation = td && tenancyViolation(td, identity, labels ?? {});
  if (violation) return deny(req.uid, violation.reason, violation.message);

  const secretName = identitySecretName(identity);
  // A pod-certificate identity writes no Secret, so it takes no name from anyone.
  if (secretName === undefined) return admitted(req.uid, td, tdName, namespace);
  let others: AgentIdentity[];
  let secret: ObjectMeta | undefined;
  try {
    others = await claimantsOf(opts.identities, namespace, secretName);
    secret = await opts.secretMetadata(namespace, secretName);
  } catch (err) {
    return lookupFailed(req.uid, `could not check whether Secret "${secretName}" in namespace "${namespace}" is taken`, err, subject);
  }
  const denial = secretClaimDenial(identity, others, secret);
  if (denial) return deny(req.uid, denial.reason, denial.message);
  return admitted(req.uid, td, tdName, namespace);
}

// Applied before its TrustDomain (GitOps order is not ours to choose): the reconciler judges it once that exists.
function admitted(uid: string, td: TrustDomain | undefined, tdName: string, namespace: string): Outcome {
  return allow(uid, td ? [] : [`TrustDomain "${tdName}" does not exist yet; the operator issues this identity once it does, if it admits namespace "${namespace}" and the dnsNames`]);
}
