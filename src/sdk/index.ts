// agent-identity-operator/sdk: the library agents import to use the identity
// the operator mounts into their pod. Files and node:tls only; no Kubernetes client.
// First, so an unsupported Node.js is named before anything else loads.
import './node-version.ts';
export type { DenyListEntry, Destination, EgressDocument, PolicyDocument, PolicyPeer } from '../api/documents.ts';
export { Bundle, BundleSet, SpiffeID, type X509Certificate } from '../pki/index.ts';
export {
  type Authorization,
  type Authorizer,
  authorizeAny,
  authorizeEgress,
  authorizeID,
  authorizeMemberOf,
  authorizeOneOf,
  authorizePolicy,
  type PolicyAuthorizerOptions,
} from './authorizer.ts';
export { type AuditLog, type AuditLogOptions, openAuditLog } from './audit-log.ts';
export type { AuditRecord } from '../audit/record.ts';
export { AgentHttpsAgent, type ClientOptions, connect, httpsAgent, tlsConnectOptions } from './client.ts';
export { IdentityError, PeerRefusedError, type RefusalReason } from './errors.ts';
export { identityFiles, type IdentityFiles } from './files.ts';
export { Identity, type IdentityEvents, loadIdentity, type LoadOptions } from './identity.ts';
export { type PeerIdentity, peerIdentity } from './peer.ts';
export { parsePolicyDocument } from './policy-document.ts';
export { enforceRequestPolicy, type RequestPolicyOptions, withRequestPolicy } from './request-policy.ts';
export { grantsOf, type Grants, type PolicySection } from './requests/decide.ts';
export { guardRequest, REQUEST_POLICY_DEFAULTS, type RequestContext } from './requests/guard.ts';
export { RPC_ERROR } from './requests/jsonrpc.ts';
export { AgentHttpsServer, AgentServer, createHttpsServer, createServer, type HttpsServerOptions, type ServerOptions } from './server.ts';
export { X509SVID } from './svid.ts';
