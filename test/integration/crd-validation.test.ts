// Admission-time validation and defaulting of the CRDs in crds/, checked
// against a real kube-apiserver: every rule in the schema has a row here that
// breaks it, and the edges of each rule have a row that must be accepted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ApiException, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadAll } from 'js-yaml';
import { startTestEnv, type TestEnv } from '../support/env.ts';
import { eventually } from '../support/operator.ts';
import { API_VERSION, AGENT_IDENTITY, CLUSTER_FEDERATED_TRUST_DOMAIN, GROUP, TRUST_DOMAIN, VERSION } from '../../src/api/group.ts';
import type { TrustDomainStatus, AgentIdentity, AgentIdentitySpec, TrustDomain, TrustDomainSpec } from '../../src/api/types.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

let env: TestEnv;
let api: CustomObjectsApi;
let ns: string;
const run = randomBytes(3).toString('hex');
const trustDomainsCreated: string[] = [];

before(async () => {
  env = await startTestEnv();
  api = env.kc.makeApiClient(CustomObjectsApi);
  ns = await env.namespace('crd-validation');
});

after(async () => {
  // On a private control plane everything goes with it; on an existing
  // cluster, cluster-scoped objects would outlive the namespace.
  if (api) await Promise.all(trustDomainsCreated.map((name) => deleteTrustDomain(name)));
  await env?.stop();
});

// ---------------------------------------------------------------- helpers

let seq = 0;
const uniqueName = (prefix: string) => `${prefix}-${run}-${++seq}`;

const aidParams = { group: GROUP, version: VERSION, plural: AGENT_IDENTITY.plural };
const tdParams = { group: GROUP, version: VERSION, plural: TRUST_DOMAIN.plural };

type Spec = Record<string, unknown>;

function agentIdentity(spec: Spec, name = uniqueName('aid')) {
  return { apiVersion: API_VERSION, kind: AGENT_IDENTITY.kind, metadata: { name }, spec };
}
function trustDomain(spec: Spec, name = uniqueName('td')) {
  return { apiVersion: API_VERSION, kind: TRUST_DOMAIN.kind, metadata: { name }, spec };
}

async function createAgentIdentity(body: ReturnType<typeof agentIdentity>): Promise<AgentIdentity> {
  return (await api.createNamespacedCustomObject({ ...aidParams, namespace: ns, body })) as AgentIdentity;
}
async function createTrustDomain(body: ReturnType<typeof trustDomain>): Promise<TrustDomain> {
  trustDomainsCreated.push(body.metadata.name);
  return (await api.createClusterCustomObject({ ...tdParams, body })) as TrustDomain;
}
async function deleteTrustDomain(name: string): Promise<void> {
  await api.deleteClusterCustomObject({ ...tdParams, name }).catch(() => undefined);
}

interface StatusCause { field?: string; message?: string; reason?: string }
interface Refusal { code: number; message: string; causes: StatusCause[] }

/** Runs `fn`, which must be refused by the API server; returns the Status it answered with. */
async function refusal(fn: () => Promise<unknown>): Promise<Refusal> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const raw: unknown = err.body;
    const status = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { message?: string; details?: { causes?: StatusCause[] } };
    return { code: err.code, message: status.message ?? '', causes: status.details?.causes ?? [] };
  }
  assert.fail('the API server accepted an object it should have refused');
}

async function assertRefused(fn: () => Promise<unknown>, expected: string, causes = 1): Promise<void> {
  const r = await refusal(fn);
  assert.equal(r.code, 422, `expected 422 Unprocessable Entity, got ${r.code}: ${r.message}`);
  assert.ok(r.message.includes(expected), `expected the refusal to mention\n  ${expected}\nbut it said\n  ${r.message}`);
  // One mistake, one error: the format rules guard the rules that parse, so a
  // malformed value is never reported twice (or as a CEL evaluation error).
  // When the plain schema already fails, the API server skips the CEL rules
  // and says so in an extra cause, which is not an error of ours.
  const errors = r.causes.filter((c) => !c.message?.includes('some validation rules were not checked'));
  assert.equal(errors.length, causes, `expected ${causes} error(s), got: ${r.message}`);
}

const long = (n: number, c = 'a') => c.repeat(n);

// ---------------------------------------------------------------- the tables

interface Case {
  name: string;
  kind: 'AgentIdentity' | 'TrustDomain';
  spec: Spec;
  /** Overrides the generated object name. */
  objectName?: string;
  expect?: string; // substring of the refusal; absent means "must be accepted"
  causes?: number;
}

const minimalAid = { serviceAccountName: 'planner' } satisfies AgentIdentitySpec;
const aid = (spec: Partial<AgentIdentitySpec> | Spec): Spec => ({ ...minimalAid, ...spec });
const selfSigned = { selfSigned: {} };
const td = (spec: Partial<TrustDomainSpec> | Spec): Spec => ({ trustDomain: 'cluster.local', ca: selfSigned, ...spec });

const invalid: Case[] = [
  // AgentIdentity: required fields and names
  { kind: 'AgentIdentity', name: 'serviceAccountName is required', spec: {}, expect: 'spec.serviceAccountName: Required value' },
  { kind: 'AgentIdentity', name: 'serviceAccountName must be a DNS-1123 subdomain', spec: aid({ serviceAccountName: 'Planner_1' }), expect: 'serviceAccountName must be a lowercase RFC 1123 subdomain' },
  { kind: 'AgentIdentity', name: 'serviceAccountName is at most 253 characters', spec: aid({ serviceAccountName: long(254) }), expect: 'spec.serviceAccountName: Too long' },
  { kind: 'AgentIdentity', name: 'object name is at most 63 characters', spec: aid({}), objectName: long(64, 'n'), expect: 'AgentIdentity names must be at most 63 characters' },
  { kind: 'AgentIdentity', name: 'trustDomain must name a TrustDomain object', spec: aid({ trustDomain: 'cluster.local/prod' }), expect: 'trustDomain must name a TrustDomain object' },
  // dnsNames
  { kind: 'AgentIdentity', name: 'dnsNames are lowercase', spec: aid({ dnsNames: ['Planner.agents.svc'] }), expect: 'spec.dnsNames[0]: Invalid value: "Planner.agents.svc": not a valid DNS name: use lowercase RFC 1123 labels' },
  { kind: 'AgentIdentity', name: 'dnsNames wildcard only leftmost', spec: aid({ dnsNames: ['planner.*.svc'] }), expect: 'Invalid value: "planner.*.svc": not a valid DNS name' },
  { kind: 'AgentIdentity', name: 'dnsNames partial-label wildcard', spec: aid({ dnsNames: ['plan*.agents.svc'] }), expect: 'not a valid DNS name' },
  { kind: 'AgentIdentity', name: 'dnsNames label at most 63 characters', spec: aid({ dnsNames: [`${long(64)}.agents.svc`] }), expect: 'not a valid DNS name' },
  { kind: 'AgentIdentity', name: 'dnsNames no empty label', spec: aid({ dnsNames: ['planner..svc'] }), expect: 'not a valid DNS name' },
  { kind: 'AgentIdentity', name: 'dnsNames wildcard needs two labels', spec: aid({ dnsNames: ['*.com'] }), expect: 'Invalid value: "*.com": wildcard DNS name too broad' },
  { kind: 'AgentIdentity', name: 'dnsNames is a set', spec: aid({ dnsNames: ['a.svc', 'a.svc'] }), expect: 'Duplicate value' },
  { kind: 'AgentIdentity', name: 'dnsNames at most 32', spec: aid({ dnsNames: Array.from({ length: 33 }, (_, i) => `n${i}.svc`) }), expect: 'spec.dnsNames: Too many' },
  { kind: 'AgentIdentity', name: 'dnsNames entry at most 253 characters', spec: aid({ dnsNames: [Array.from({ length: 5 }, () => long(60)).join('.')] }), expect: 'Too long' },
  // duration
  { kind: 'AgentIdentity', name: 'duration must be a Go duration', spec: aid({ duration: '1 day' }), expect: 'duration must be a Go duration such as 24h' },
  { kind: 'AgentIdentity', name: 'duration has no days unit', spec: aid({ duration: '7d' }), expect: 'duration must be a Go duration such as 24h' },
  { kind: 'AgentIdentity', name: 'duration is not negative', spec: aid({ duration: '-24h' }), expect: 'duration must be a Go duration such as 24h' },
  { kind: 'AgentIdentity', name: 'duration at least 1s', spec: aid({ duration: '999ms' }), expect: 'duration must be at least 1s and at most 8760h' },
  { kind: 'AgentIdentity', name: 'duration at most 8760h', spec: aid({ duration: '8760h1s' }), expect: 'duration must be at least 1s and at most 8760h' },
  { kind: 'AgentIdentity', name: 'duration string bounded', spec: aid({ duration: `${'1h'.repeat(16)}1m` }), expect: 'spec.duration: Too long' },
  // renewal
  { kind: 'AgentIdentity', name: 'renewBefore must be a Go duration', spec: aid({ renewBefore: 'soon' }), expect: 'renewBefore must be a Go duration' },
  { kind: 'AgentIdentity', name: 'renewBefore greater than zero', spec: aid({ renewBefore: '0s' }), expect: 'renewBefore must be greater than zero' },
  { kind: 'AgentIdentity', name: 'renewBefore shorter than default duration', spec: aid({ renewBefore: '24h' }), expect: 'renewBefore (24h) must be shorter than duration (24h)' },
  { kind: 'AgentIdentity', name: 'renewBefore shorter than duration', spec: aid({ duration: '1h', renewBefore: '90m' }), expect: 'renewBefore (90m) must be shorter than duration (1h)' },
  { kind: 'AgentIdentity', name: 'policy rule names one kind of peer', spec: aid({ policy: { allow: [{ agent: { name: 'a' }, spiffeID: 'spiffe://x/y' } as never] } }), expect: 'each allow rule names exactly one of agent, selector' },
  { kind: 'AgentIdentity', name: 'policy spiffeID is a SPIFFE ID', spec: aid({ policy: { allow: [{ spiffeID: 'https://x/y' }] } }), expect: 'spiffeID must start with spiffe://' },
  // federation (issue 21): a whole trust domain, and an egress rule's hosts
  { kind: 'AgentIdentity', name: 'a trustDomain rule is one kind of peer', spec: aid({ policy: { allow: [{ trustDomain: 'partner.example', spiffeID: 'spiffe://x/y' } as never] } }), expect: 'each allow rule names exactly one of agent, selector (optionally with namespaceSelector), namespaceSelector, spiffeID, or trustDomain' },
  { kind: 'AgentIdentity', name: 'a trustDomain rule cannot narrow', spec: aid({ policy: { allow: [{ trustDomain: 'partner.example', http: { methods: ['GET'] } }] } }), expect: 'a trustDomain rule cannot narrow (http, mcp, a2a)' },
  { kind: 'AgentIdentity', name: 'a trustDomain rule names a trust domain', spec: aid({ policy: { allow: [{ trustDomain: 'Partner Example' }] } }), expect: 'trustDomain must be a trust domain name' },
  { kind: 'AgentIdentity', name: 'egress hosts go with a spiffeID rule', spec: aid({ policy: { egress: { allow: [{ trustDomain: 'partner.example', hosts: ['a.example'] } as never] } } }), expect: 'hosts go with a spiffeID rule' },
  { kind: 'AgentIdentity', name: 'egress hosts are lowercase DNS names', spec: aid({ policy: { egress: { allow: [{ spiffeID: 'spiffe://partner.example/a', hosts: ['A_b'] }] } } }), expect: 'hosts must be lowercase DNS names' },
  // policy rules that narrow what a peer may call (issue 19)
  { kind: 'AgentIdentity', name: 'a rule narrows to mcp or a2a, not both', spec: aid({ policy: { allow: [{ agent: { name: 'a' }, mcp: { tools: ['x'] }, a2a: { methods: ['y'] } }] } }), expect: 'a rule narrows to mcp or to a2a, not both' },
  { kind: 'AgentIdentity', name: 'an egress rule narrows to mcp or a2a, not both', spec: aid({ policy: { egress: { allow: [{ agent: { name: 'a' }, mcp: { tools: ['x'] }, a2a: { methods: ['y'] } }] } } }), expect: 'spec.policy.egress.allow[0]: Invalid value: a rule narrows to mcp or to a2a, not both' },
  { kind: 'AgentIdentity', name: 'http sets methods or paths', spec: aid({ policy: { allow: [{ agent: { name: 'a' }, http: {} }] } }), expect: 'spec.policy.allow[0].http: Invalid value: http must set methods, paths or both' },
  { kind: 'AgentIdentity', name: 'http methods are uppercase', spec: aid({ policy: { allow: [{ agent: { name: 'a' }, http: { methods: ['get'] } }] } }), expect: 'spec.policy.allow[0].http.methods[0]: Invalid value: "get": an HTTP method is uppercase letters, e.g. GET or POST' },
  { kind: 'AgentIdentity', name: 'http paths start with /', spec: aid({ policy: { allow: [{ agent: { name: 'a' }, http: { paths: ['mcp'] } }] } }), expect: 'a path pattern must start with / (or be * for every path)' },
  { kind: 'AgentIdentity', name: 'http paths have no query', spec: aid({ policy: { allow: [{ agent: { name: 'a' }, http: { paths: ['/mcp?x=1'] } }] } }), expect: 'paths match without the query string' },
  { kind: 'AgentIdentity', name: 'mcp names a kind', spec: aid({ policy: { allow: [{ agent: { name: 'a' }, mcp: {} }] } }), expect: 'mcp must set tools, prompts or resources' },
  { kind: 'AgentIdentity', name: 'mcp names are not empty', spec: aid({ policy: { allow: [{ agent: { name: 'a' }, mcp: { tools: [''] } }] } }), expect: 'spec.policy.allow[0].mcp.tools[0]: Invalid value: "": spec.policy.allow[0].mcp.tools[0] in body should be at least 1 chars long' },
  { kind: 'AgentIdentity', name: 'a2a needs methods', spec: aid({ policy: { allow: [{ agent: { name: 'a' }, a2a: {} as never }] } }), expect: 'spec.policy.allow[0].a2a.methods: Required value' },
  { kind: 'AgentIdentity', name: 'not both renewBefore and renewBeforePercentage', spec: aid({ renewBefore: '1h', renewBeforePercentage: 30 }), expect: 'set either renewBefore or renewBeforePercentage, not both' },
  { kind: 'AgentIdentity', name: 'renewBeforePercentage at least 1', spec: aid({ renewBeforePercentage: 0 }), expect: 'spec.renewBeforePercentage: Invalid value: 0: spec.renewBeforePercentage in body should be greater than or equal to 1' },
  { kind: 'AgentIdentity', name: 'renewBeforePercentage at most 99', spec: aid({ renewBeforePercentage: 100 }), expect: 'should be less than or equal to 99' },
  { kind: 'AgentIdentity', name: 'renewBeforePercentage is an integer', spec: aid({ renewBeforePercentage: 33.5 }), expect: 'spec.renewBeforePercentage in body must be of type int32', causes: 2 },
  // privateKey
  { kind: 'AgentIdentity', name: 'ECDSA size 256 or 384', spec: aid({ privateKey: { algorithm: 'ECDSA', size: 521 } }), expect: 'spec.privateKey.size: Invalid value: ECDSA keys must have size 256 or 384 (the curve P-256 or P-384)' },
  { kind: 'AgentIdentity', name: 'default algorithm is ECDSA for size checks', spec: aid({ privateKey: { size: 2048 } }), expect: 'ECDSA keys must have size 256 or 384' },
  { kind: 'AgentIdentity', name: 'RSA size 2048, 3072 or 4096', spec: aid({ privateKey: { algorithm: 'RSA', size: 1024 } }), expect: 'spec.privateKey.size: Invalid value: RSA keys must have size 2048, 3072 or 4096 bits' },
  { kind: 'AgentIdentity', name: 'Ed25519 takes no size', spec: aid({ privateKey: { algorithm: 'Ed25519', size: 256 } }), expect: 'Ed25519 keys have a fixed size; remove privateKey.size' },
  { kind: 'AgentIdentity', name: 'algorithm enum', spec: aid({ privateKey: { algorithm: 'DSA' } }), expect: 'Unsupported value: "DSA"' },
  { kind: 'AgentIdentity', name: 'rotationPolicy enum', spec: aid({ privateKey: { rotationPolicy: 'Sometimes' } }), expect: 'Unsupported value: "Sometimes"' },
  // proxy
  { kind: 'AgentIdentity', name: 'proxy needs port and appPort', spec: aid({ proxy: { port: 8443 } }), expect: 'spec.proxy.appPort: Required value' },
  { kind: 'AgentIdentity', name: 'proxy port and appPort differ', spec: aid({ proxy: { port: 8080, appPort: 8080 } }), expect: 'spec.proxy.appPort: Invalid value: proxy.port and proxy.appPort must differ: the proxy listens on port and forwards to the agent on 127.0.0.1:appPort' },
  { kind: 'AgentIdentity', name: 'proxy port at least 1', spec: aid({ proxy: { port: 0, appPort: 8080 } }), expect: 'spec.proxy.port: Invalid value: 0: proxy.port must be a TCP port number between 1 and 65535' },
  { kind: 'AgentIdentity', name: 'proxy appPort at most 65535', spec: aid({ proxy: { port: 8443, appPort: 65536 } }), expect: 'proxy.appPort must be a TCP port number between 1 and 65535' },
  { kind: 'AgentIdentity', name: 'proxy port is not the outbound port', spec: aid({ proxy: { port: 15001, appPort: 8080 } }), expect: 'proxy.port cannot be 15001: the proxy serves the agent\'s outbound calls (HTTP_PROXY) on 127.0.0.1:15001' },
  { kind: 'AgentIdentity', name: 'proxy appPort is not the outbound port', spec: aid({ proxy: { port: 8443, appPort: 15001 } }), expect: 'proxy.appPort cannot be 15001' },
  { kind: 'AgentIdentity', name: 'proxy mode enum', spec: aid({ proxy: { port: 8443, appPort: 8080, mode: 'grpc' } }), expect: 'spec.proxy.mode: Unsupported value: "grpc": supported values: "http", "tcp"' },
  // Secret
  { kind: 'AgentIdentity', name: 'secretName must be a DNS-1123 subdomain', spec: aid({ secretName: 'planner_identity' }), expect: 'secretName must be a lowercase RFC 1123 subdomain' },
  { kind: 'AgentIdentity', name: 'secretTemplate may not set managed-by', spec: aid({ secretTemplate: { labels: { 'app.kubernetes.io/managed-by': 'me' } } }), expect: 'secretTemplate.labels must not set app.kubernetes.io/managed-by or keys starting with agentidentity.dev/' },
  { kind: 'AgentIdentity', name: 'secretTemplate may not set operator labels', spec: aid({ secretTemplate: { labels: { 'agentidentity.dev/identity': 'other' } } }), expect: 'secretTemplate.labels must not set' },
  { kind: 'AgentIdentity', name: 'secretTemplate may not set operator annotations', spec: aid({ secretTemplate: { annotations: { 'agentidentity.dev/spiffe-id': 'spiffe://evil/x' } } }), expect: 'secretTemplate.annotations must not set keys starting with agentidentity.dev/' },
  { kind: 'AgentIdentity', name: 'secretTemplate label values are label values', spec: aid({ secretTemplate: { labels: { team: 'not ok!' } } }), expect: 'label values must be empty or consist of letters' },
  { kind: 'AgentIdentity', name: 'secretTemplate at most 64 labels', spec: aid({ secretTemplate: { labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) } }), expect: 'spec.secretTemplate.labels: Too many' },
  // delivery
  { kind: 'AgentIdentity', name: 'delivery enum', spec: aid({ delivery: 'Email' }), expect: 'Unsupported value: "Email"' },
  { kind: 'AgentIdentity', name: 'PodCertificate needs at least 1h', spec: aid({ delivery: 'PodCertificate', duration: '30m' }), expect: "duration (30m) must be between 1h and 2184h (91 days) with delivery PodCertificate" },
  { kind: 'AgentIdentity', name: 'PodCertificate at most 91 days', spec: aid({ delivery: 'PodCertificate', duration: '2185h' }), expect: 'must be between 1h and 2184h' },
  { kind: 'AgentIdentity', name: 'PodCertificate has no RSA-2048', spec: aid({ delivery: 'PodCertificate', privateKey: { algorithm: 'RSA' } }), expect: 'with delivery PodCertificate an RSA key must be 3072 or 4096 bits' },
  { kind: 'AgentIdentity', name: 'PodCertificate has no Secret', spec: aid({ delivery: 'PodCertificate', secretName: 'planner-tls' }), expect: 'secretName and secretTemplate do not apply with delivery PodCertificate' },

  // TrustDomain
  { kind: 'TrustDomain', name: 'trustDomain is required', spec: { ca: selfSigned }, expect: 'spec.trustDomain: Required value' },
  { kind: 'TrustDomain', name: 'trustDomain is lowercase', spec: td({ trustDomain: 'Cluster.Local' }), expect: "trustDomain must be a SPIFFE trust domain name: only lowercase letters, digits, '.', '-' and '_'" },
  { kind: 'TrustDomain', name: 'trustDomain has no scheme', spec: td({ trustDomain: 'spiffe://cluster.local' }), expect: 'trustDomain must be a SPIFFE trust domain name' },
  { kind: 'TrustDomain', name: 'trustDomain has no port', spec: td({ trustDomain: 'cluster.local:8443' }), expect: 'trustDomain must be a SPIFFE trust domain name' },
  { kind: 'TrustDomain', name: 'trustDomain at most 255 characters', spec: td({ trustDomain: long(256) }), expect: 'spec.trustDomain: Too long' },
  { kind: 'TrustDomain', name: 'namespaceSelector In needs values', spec: td({ namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In' }] } }), expect: 'operator In and NotIn need at least one value; Exists and DoesNotExist take none' },
  { kind: 'TrustDomain', name: 'namespaceSelector Exists takes no values', spec: td({ namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Exists', values: ['a'] }] } }), expect: 'operator In and NotIn need at least one value' },
  { kind: 'TrustDomain', name: 'dnsNames.allowed patterns are lowercase', spec: td({ dnsNames: { allowed: ['*.{namespace}.SVC'] } }), expect: 'each allowed pattern is a lowercase DNS name' },
  { kind: 'TrustDomain', name: 'dnsNames.allowed knows only its placeholders', spec: td({ dnsNames: { allowed: ['*.{name}.svc'] } }), expect: 'and the placeholders {namespace} and {clusterDomain}, e.g. *.{namespace}.svc' },
  { kind: 'TrustDomain', name: 'dnsNames.allowed has no partial-label wildcard', spec: td({ dnsNames: { allowed: ['api*.example.com'] } }), expect: 'each allowed pattern is a lowercase DNS name' },
  { kind: 'TrustDomain', name: 'clusterDomain is a DNS name', spec: td({ clusterDomain: 'cluster.local.' }), expect: 'clusterDomain must be a lowercase DNS name such as cluster.local' },
  { kind: 'TrustDomain', name: 'object name is at most 63 characters', spec: td({}), objectName: long(64, 't'), expect: 'TrustDomain names must be at most 63 characters' },
  { kind: 'TrustDomain', name: 'ca is required', spec: { trustDomain: 'cluster.local' }, expect: 'spec.ca: Required value' },
  { kind: 'TrustDomain', name: 'ca needs one source', spec: td({ ca: {} }), expect: 'exactly one of ca.selfSigned or ca.secretRef must be set' },
  { kind: 'TrustDomain', name: 'ca takes only one source', spec: td({ ca: { selfSigned: {}, secretRef: { namespace: 'pki', name: 'root' } } }), expect: 'exactly one of ca.selfSigned or ca.secretRef must be set' },
  { kind: 'TrustDomain', name: 'secretRef needs a name', spec: td({ ca: { secretRef: { namespace: 'pki' } } }), expect: 'spec.ca.secretRef.name: Required value' },
  { kind: 'TrustDomain', name: 'secretRef namespace is a DNS-1123 label', spec: td({ ca: { secretRef: { namespace: 'pki.system', name: 'root' } } }), expect: 'namespace must be a lowercase RFC 1123 label' },
  { kind: 'TrustDomain', name: 'secretRef name is a DNS-1123 subdomain', spec: td({ ca: { secretRef: { namespace: 'pki', name: 'Root_CA' } } }), expect: 'name must be a lowercase RFC 1123 subdomain' },
  { kind: 'TrustDomain', name: 'selfSigned keyAlgorithm enum', spec: td({ ca: { selfSigned: { keyAlgorithm: 'DSA' } } }), expect: 'Unsupported value: "DSA"' },
  { kind: 'TrustDomain', name: 'spiffeIDTemplate is relative', spec: td({ spiffeIDTemplate: '/ns/{namespace}/agent/{name}' }), expect: "spiffeIDTemplate must not start with '/'" },
  { kind: 'TrustDomain', name: 'spiffeIDTemplate knows three placeholders', spec: td({ spiffeIDTemplate: 'ns/{namespace}/agent/{name}/{pod}' }), expect: 'spiffeIDTemplate may contain only letters, digits' },
  { kind: 'TrustDomain', name: 'spiffeIDTemplate has no empty segment', spec: td({ spiffeIDTemplate: 'ns/{namespace}//{name}' }), expect: 'spiffeIDTemplate may contain only' },
  { kind: 'TrustDomain', name: 'spiffeIDTemplate has no trailing slash', spec: td({ spiffeIDTemplate: 'ns/{namespace}/agent/{name}/' }), expect: 'spiffeIDTemplate may contain only' },
  { kind: 'TrustDomain', name: 'spiffeIDTemplate has no query or spaces', spec: td({ spiffeIDTemplate: 'ns/{namespace}/agent/{name}?x=1' }), expect: 'spiffeIDTemplate may contain only' },
  { kind: 'TrustDomain', name: 'spiffeIDTemplate has no dot segments', spec: td({ spiffeIDTemplate: 'ns/{namespace}/../{name}' }), expect: "spiffeIDTemplate must not contain '.' or '..' path segments" },
  { kind: 'TrustDomain', name: 'spiffeIDTemplate separates namespaces', spec: td({ spiffeIDTemplate: 'agent/{name}' }), expect: 'spiffeIDTemplate must include {namespace} and at least one of {name} or {serviceAccount}' },
  { kind: 'TrustDomain', name: 'spiffeIDTemplate names the agent', spec: td({ spiffeIDTemplate: 'ns/{namespace}/agents' }), expect: 'spiffeIDTemplate must include {namespace}' },
  { kind: 'TrustDomain', name: 'spiffeIDTemplate at most 255 characters', spec: td({ spiffeIDTemplate: `ns/{namespace}/${long(241)}/{name}` }), expect: 'spec.spiffeIDTemplate: Too long' },
];

const valid: Case[] = [
  { kind: 'AgentIdentity', name: 'minimal', spec: aid({}) },
  { kind: 'AgentIdentity', name: 'duration exactly 10m', spec: aid({ duration: '10m' }) },
  { kind: 'AgentIdentity', name: 'duration exactly 8760h', spec: aid({ duration: '8760h' }) },
  { kind: 'AgentIdentity', name: 'duration in mixed units', spec: aid({ duration: '1h30m', renewBefore: '29m59.5s' }) },
  { kind: 'AgentIdentity', name: 'fractional duration', spec: aid({ duration: '0.5h' }) },
  { kind: 'AgentIdentity', name: 'renewBefore just under duration', spec: aid({ duration: '24h', renewBefore: '23h59m59s' }) },
  { kind: 'AgentIdentity', name: 'renewBefore against the default duration', spec: aid({ renewBefore: '8h' }) },
  { kind: 'AgentIdentity', name: 'renewBeforePercentage 1', spec: aid({ renewBeforePercentage: 1 }) },
  { kind: 'AgentIdentity', name: 'renewBeforePercentage 99', spec: aid({ renewBeforePercentage: 99 }) },
  { kind: 'AgentIdentity', name: 'Ed25519 without size', spec: aid({ privateKey: { algorithm: 'Ed25519' } }) },
  { kind: 'AgentIdentity', name: 'ECDSA 384', spec: aid({ privateKey: { algorithm: 'ECDSA', size: 384, rotationPolicy: 'Never' } }) },
  { kind: 'AgentIdentity', name: 'RSA 4096', spec: aid({ privateKey: { algorithm: 'RSA', size: 4096 } }) },
  { kind: 'AgentIdentity', name: 'RSA without size', spec: aid({ privateKey: { algorithm: 'RSA' } }) },
  { kind: 'AgentIdentity', name: 'wildcard and single-label DNS names', spec: aid({ dnsNames: ['*.agents.example.com', 'planner', 'planner.agents.svc.cluster.local', 'xn--bcher-kva.example'] }) },
  { kind: 'AgentIdentity', name: '32 DNS names', spec: aid({ dnsNames: Array.from({ length: 32 }, (_, i) => `n${i}.svc`) }) },
  { kind: 'AgentIdentity', name: 'DNS label of 63 characters', spec: aid({ dnsNames: [`${long(63)}.svc`] }) },
  { kind: 'AgentIdentity', name: 'object name of 63 characters', spec: aid({}), objectName: long(63, 'n') },
  { kind: 'AgentIdentity', name: 'trustDomain that names a TrustDomain with dots', spec: aid({ trustDomain: 'prod.example' }) },
  { kind: 'AgentIdentity', name: 'PodCertificate minimal', spec: aid({ delivery: 'PodCertificate' }) },
  { kind: 'AgentIdentity', name: 'proxy at the port edges, tcp mode', spec: aid({ proxy: { port: 1, appPort: 65535, mode: 'tcp' } }) },
  { kind: 'AgentIdentity', name: 'proxy with pod certificates', spec: aid({ delivery: 'PodCertificate', proxy: { port: 8443, appPort: 8080 } }) },
  { kind: 'AgentIdentity', name: 'PodCertificate with RSA 3072 for 2184h', spec: aid({ delivery: 'PodCertificate', duration: '2184h', privateKey: { algorithm: 'RSA', size: 3072 } }) },
  { kind: 'AgentIdentity', name: 'PodCertificate with Ed25519 for exactly 1h', spec: aid({ delivery: 'PodCertificate', duration: '1h', privateKey: { algorithm: 'Ed25519' } }) },
  { kind: 'AgentIdentity', name: 'secretTemplate with ordinary keys', spec: aid({ secretName: 'planner.tls', secretTemplate: { labels: { 'app.kubernetes.io/name': 'planner', team: '', 'agentidentity.dev.example/x': 'y' }, annotations: { 'example.com/owner': 'team planner: any text!' } } }) },

  { kind: 'TrustDomain', name: "trustDomain with '_' and '-'", spec: td({ trustDomain: 'my_org-1.example' }) },
  { kind: 'TrustDomain', name: 'trustDomain of 255 characters', spec: td({ trustDomain: long(255) }) },
  { kind: 'TrustDomain', name: 'spiffeIDTemplate with {serviceAccount}', spec: td({ spiffeIDTemplate: 'ns/{namespace}/sa/{serviceAccount}' }) },
  { kind: 'TrustDomain', name: 'spiffeIDTemplate with every placeholder and path characters', spec: td({ spiffeIDTemplate: 'k8s.v1/ns/{namespace}/sa/{serviceAccount}/agent_{name}-x' }) },
  { kind: 'TrustDomain', name: 'CA you bring', spec: td({ ca: { secretRef: { namespace: 'pki', name: 'root.ca' } } }) },
  { kind: 'TrustDomain', name: 'self-signed Ed25519 CA', spec: td({ ca: { selfSigned: { keyAlgorithm: 'Ed25519' } } }) },
  { kind: 'TrustDomain', name: 'tenancy: namespaceSelector, dnsNames and clusterDomain', spec: td({ namespaceSelector: { matchLabels: { team: 'a' }, matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }, { key: 'legacy', operator: 'DoesNotExist' }] }, dnsNames: { allowed: ['*.{namespace}.svc.{clusterDomain}', 'api-{namespace}.example.com', '*.*.internal'], allowWildcards: true }, clusterDomain: 'prod.internal' }) },
  { kind: 'TrustDomain', name: 'dnsNames.allowed empty', spec: td({ dnsNames: { allowed: [] } }) },
];

function create(c: Case): Promise<unknown> {
  return c.kind === 'AgentIdentity'
    ? createAgentIdentity(agentIdentity(c.spec, c.objectName))
    : createTrustDomain(trustDomain(c.spec, c.objectName));
}

test('invalid objects are refused with a message that names the rule', async (t) => {
  for (const c of invalid) {
    await t.test(`${c.kind}: ${c.name}`, async () => {
      await assertRefused(() => create(c), c.expect!, c.causes);
    });
  }
});

test('valid edge cases are accepted', async (t) => {
  for (const c of valid) {
    await t.test(`${c.kind}: ${c.name}`, async () => {
      await create(c);
    });
  }
});

// ---------------------------------------------------------------- defaults

test('a minimal AgentIdentity reads back with its defaults', async () => {
  const created = await createAgentIdentity(agentIdentity({ serviceAccountName: 'planner' }));
  assert.equal(created.spec.trustDomain, 'default');
  assert.equal(created.spec.duration, '24h');
  assert.deepEqual(created.spec.privateKey, { algorithm: 'ECDSA', rotationPolicy: 'Always' });
  // No default is invented where the operator derives the value.
  assert.equal(created.spec.renewBefore, undefined);
  assert.equal(created.spec.renewBeforePercentage, undefined);
  assert.equal(created.spec.secretName, undefined);
  assert.equal(created.spec.privateKey?.size, undefined);
  assert.equal(created.spec.proxy, undefined, 'the proxy is opt-in');
});

test('a proxy without a mode reads back in http mode', async () => {
  const created = await createAgentIdentity(agentIdentity({ serviceAccountName: 'planner', proxy: { port: 8443, appPort: 8080 } }));
  assert.deepEqual(created.spec.proxy, { port: 8443, appPort: 8080, mode: 'http' });
});

test('a partial privateKey is completed with defaults', async () => {
  const created = await createAgentIdentity(agentIdentity(aid({ privateKey: { size: 384 } })));
  assert.deepEqual(created.spec.privateKey, { algorithm: 'ECDSA', size: 384, rotationPolicy: 'Always' });
});

test('a minimal TrustDomain reads back with its defaults', async () => {
  const created = await createTrustDomain(trustDomain({ trustDomain: 'defaults.test', ca: { selfSigned: {} } }));
  assert.equal(created.spec.spiffeIDTemplate, 'ns/{namespace}/agent/{name}');
  assert.deepEqual(created.spec.ca, { selfSigned: { keyAlgorithm: 'ECDSA' } });
});

// ---------------------------------------------------------------- schema mirrors src/api/types.ts

test('every AgentIdentity spec field survives a round trip (nothing is pruned)', async () => {
  // renewBefore and renewBeforePercentage exclude each other: one object each.
  const spec = {
    serviceAccountName: 'planner',
    trustDomain: 'prod',
    dnsNames: ['planner.agents.svc', '*.planner.example.com'],
    duration: '48h',
    renewBefore: '12h',
    privateKey: { algorithm: 'RSA', size: 3072, rotationPolicy: 'Never' },
    suspended: false,
    policy: { allow: [
      { agent: { name: 'orchestrator' } },
      { agent: { name: 'auditor', namespace: 'ops' } },
      { selector: { matchLabels: { role: 'auditor' } }, namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['x'] }] } },
      { namespaceSelector: { matchLabels: { team: 'y' } } },
      { spiffeID: 'spiffe://partner.example/ns/x/agent/y' },
      { agent: { name: 'tools' }, http: { methods: ['POST', 'GET'], paths: ['/mcp', '/api/*'] }, mcp: { tools: ['search', 'files_*'], prompts: ['*'], resources: ['file:///docs/*'] } },
      { agent: { name: 'planner' }, http: { paths: ['/a2a'] }, a2a: { methods: ['message/send'] } },
    ], egress: { allow: [{ agent: { name: 'tools' }, mcp: { tools: ['search'] } }] } },
    secretName: 'planner-tls',
    secretTemplate: { labels: { team: 'planning' }, annotations: { 'example.com/note': 'hi' } },
    delivery: 'Secret',
    proxy: { port: 8443, appPort: 8080, mode: 'http' },
  } satisfies Required<Omit<AgentIdentitySpec, 'renewBeforePercentage'>>;
  const created = await createAgentIdentity(agentIdentity(spec));
  assert.deepEqual(created.spec, spec);

  const { renewBefore: _, ...rest } = spec;
  const byPercentage = { ...rest, renewBeforePercentage: 25 } satisfies Required<Omit<AgentIdentitySpec, 'renewBefore'>>;
  const created2 = await createAgentIdentity(agentIdentity(byPercentage));
  assert.deepEqual(created2.spec, byPercentage);
});

test('every status field survives a round trip through the status subresource', async () => {
  const created = await createAgentIdentity(agentIdentity(aid({})));
  const status = {
    conditions: [{ type: 'Ready', status: 'True' as const, reason: 'Issued', message: 'certificate issued', lastTransitionTime: '2030-01-01T00:00:00Z', observedGeneration: 1 }],
    spiffeID: `spiffe://cluster.local/ns/${ns}/agent/${created.metadata.name}`,
    serialNumber: '5f1c0a',
    notBefore: '2030-01-01T00:00:00Z',
    notAfter: '2030-01-02T00:00:00Z',
    renewalTime: '2030-01-01T16:00:00Z',
    secretName: `${created.metadata.name}-identity`,
    caFingerprint: 'sha256:00ff',
    observedGeneration: 1,
    lastIssuanceReason: 'SecretDoesNotExist',
    failedIssuanceAttempts: 2,
    lastFailureTime: '2030-01-01T00:00:00Z',
    lastRenewalRequest: '2030-01-01T00:00:00Z',
    policyPeers: 3,
  };
  const updated = (await api.replaceNamespacedCustomObjectStatus({
    ...aidParams, namespace: ns, name: created.metadata.name!, body: { ...created, status },
  })) as AgentIdentity;
  assert.deepEqual(updated.status, status);

  const tdCreated = await createTrustDomain(trustDomain(td({})));
  const tdStatus = {
    conditions: [{ type: 'Ready', status: 'False' as const, reason: 'CAPending', message: '', lastTransitionTime: '2030-01-01T00:00:00Z' }],
    observedGeneration: 1,
    caSecret: { namespace: 'agent-identity-system', name: 'ca' },
    caSubject: 'CN=cluster.local',
    caFingerprint: 'sha256:00ff',
    caNotAfter: '2031-01-01T00:00:00Z',
    roots: [
      { fingerprint: 'sha256:aa', subject: 'CN=old', notBefore: '2030-01-01T00:00:00Z', notAfter: '2031-01-01T00:00:00Z', state: 'Retiring' as const },
      { fingerprint: 'sha256:bb', subject: 'CN=new', notBefore: '2030-06-01T00:00:00Z', notAfter: '2032-01-01T00:00:00Z', state: 'Active' as const },
    ],
    intermediate: { fingerprint: 'sha256:cc', notAfter: '2030-09-01T00:00:00Z' },
    rotation: {
      phase: 'ReissuingLeaves' as const, reason: 'Requested', startedAt: '2030-06-01T00:00:00Z', phaseStartedAt: '2030-06-01T00:10:00Z',
      bundleCopies: 12, bundleCopiesUpdated: 12, leaves: 10, leavesRemaining: 4,
    },
    lastRotationRequest: '2030-06-01T00:00:00Z',
    bundleNamespaces: 3,
    denyListEntries: 1,
  } satisfies Required<TrustDomainStatus>;
  const tdUpdated = (await api.replaceClusterCustomObjectStatus({
    ...tdParams, name: tdCreated.metadata.name!, body: { ...tdCreated, status: tdStatus },
  })) as TrustDomain;
  assert.deepEqual(tdUpdated.status, tdStatus);
});

test('condition status is True, False or Unknown', async () => {
  const created = await createAgentIdentity(agentIdentity(aid({})));
  const bad = { conditions: [{ type: 'Ready', status: 'Yes', reason: 'Issued', message: '', lastTransitionTime: '2030-01-01T00:00:00Z' }] };
  await assertRefused(
    () => api.replaceNamespacedCustomObjectStatus({ ...aidParams, namespace: ns, name: created.metadata.name!, body: { ...created, status: bad } }),
    'Unsupported value: "Yes"',
  );
});

// ---------------------------------------------------------------- immutability

test('AgentIdentity.spec.trustDomain is immutable', async (t) => {
  const created = await createAgentIdentity(agentIdentity(aid({ trustDomain: 'prod' })));
  const name = created.metadata.name!;
  const replace = (spec: Spec) => async () => {
    const current = (await api.getNamespacedCustomObject({ ...aidParams, namespace: ns, name })) as AgentIdentity;
    return api.replaceNamespacedCustomObject({ ...aidParams, namespace: ns, name, body: { ...current, spec } });
  };
  await t.test('changing it is refused', async () => {
    await assertRefused(replace(aid({ trustDomain: 'staging' })), 'trustDomain is immutable; delete and recreate the AgentIdentity to move it');
  });
  await t.test('removing it (so the default would apply) is refused', async () => {
    await assertRefused(replace(aid({})), 'trustDomain is immutable');
  });
  await t.test('other fields may still change', async () => {
    const updated = (await replace(aid({ trustDomain: 'prod', duration: '48h', dnsNames: ['planner.svc'] }))()) as AgentIdentity;
    assert.equal(updated.spec.duration, '48h');
    assert.equal(updated.spec.trustDomain, 'prod');
  });
});

test('AgentIdentity.spec.delivery is immutable', async (t) => {
  const created = await createAgentIdentity(agentIdentity(aid({ delivery: 'PodCertificate' })));
  const name = created.metadata.name!;
  const replace = (spec: Spec) => async () => {
    const current = (await api.getNamespacedCustomObject({ ...aidParams, namespace: ns, name })) as AgentIdentity;
    return api.replaceNamespacedCustomObject({ ...aidParams, namespace: ns, name, body: { ...current, spec } });
  };
  await t.test('changing it is refused', async () => {
    await assertRefused(replace(aid({ delivery: 'Secret' })), 'delivery is immutable: pods already running hold credentials of the other kind');
  });
  await t.test('removing it (so the default Secret would apply) is refused', async () => {
    await assertRefused(replace(aid({})), 'delivery is immutable');
  });
  await t.test('a minimal AgentIdentity is delivered as a Secret', async () => {
    const minimal = await createAgentIdentity(agentIdentity({ serviceAccountName: 'planner' }));
    assert.equal(minimal.spec.delivery, 'Secret');
  });
});

test('TrustDomain.spec.trustDomain is immutable', async (t) => {
  const created = await createTrustDomain(trustDomain(td({ trustDomain: 'immutable.test' })));
  const name = created.metadata.name!;
  const replace = (spec: Spec) => async () => {
    const current = (await api.getClusterCustomObject({ ...tdParams, name })) as TrustDomain;
    return api.replaceClusterCustomObject({ ...tdParams, name, body: { ...current, spec } });
  };
  await t.test('changing it is refused', async () => {
    await assertRefused(replace(td({ trustDomain: 'other.test' })), 'trustDomain is immutable: changing it would invalidate every identity issued under it');
  });
  await t.test('other fields may still change', async () => {
    const updated = (await replace(td({ trustDomain: 'immutable.test', spiffeIDTemplate: 'ns/{namespace}/sa/{serviceAccount}' }))()) as TrustDomain;
    assert.equal(updated.spec.spiffeIDTemplate, 'ns/{namespace}/sa/{serviceAccount}');
  });
});

// ---------------------------------------------------------------- selectable fields

test('AgentIdentities can be listed by ServiceAccount, trust domain and the Secret they claim (spec or status) with a field selector', async () => {
  const listNs = await env.namespace('crd-select');
  const mk = (name: string, spec: Spec) =>
    api.createNamespacedCustomObject({ ...aidParams, namespace: listNs, body: agentIdentity(spec, name) });
  await mk('a', { serviceAccountName: 'alpha' });
  await mk('b', { serviceAccountName: 'beta', trustDomain: 'prod' });
  await mk('c', { serviceAccountName: 'alpha', trustDomain: 'prod' });
  const names = async (fieldSelector: string) => {
    const list = (await api.listNamespacedCustomObject({ ...aidParams, namespace: listNs, fieldSelector })) as { items: AgentIdentity[] };
    return list.items.map((i) => i.metadata.name).sort();
  };
  assert.deepEqual(await names('spec.serviceAccountName=alpha'), ['a', 'c']);
  assert.deepEqual(await names('spec.trustDomain=prod'), ['b', 'c']);
  assert.deepEqual(await names('spec.trustDomain=default,spec.serviceAccountName=alpha'), ['a']);
  // What the admission webhook asks instead of listing the namespace (webhook/related.ts).
  await mk('d', { serviceAccountName: 'delta', secretName: 'shared' });
  await api.patchNamespacedCustomObjectStatus({ ...aidParams, namespace: listNs, name: 'a', body: { status: { secretName: 'old-a' } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  assert.deepEqual(await names('spec.secretName=shared'), ['d']);
  assert.deepEqual(await names('status.secretName=old-a'), ['a']);
  assert.deepEqual(await names('spec.secretName=a-identity'), [], 'a default name is no spec value: the webhook reads that identity by name');
});

// ---------------------------------------------------------------- the cluster's minimum lifetime

test('the minimum-duration admission policy (deploy/, rendered from the chart) refuses lifetimes under 10m', async () => {
  const applied = await env.kubectl(['apply', '--server-side', '-f', join(ROOT, 'deploy', 'admissionpolicy.yaml')]);
  assert.equal(applied.code, 0, applied.stderr);
  try {
    // Policies take effect once the API server has compiled them.
    await eventually(async () => {
      const r = await refusal(() => createAgentIdentity(agentIdentity(aid({ duration: '9m59s' }))));
      return r.code === 422 && r;
    }, { what: 'the policy to refuse 9m59s' }).then((r) => {
      assert.match(r.message, /spec\.duration must be at least 10m, the cluster's minimum leaf lifetime/);
      assert.match(r.message, /agentidentity-minimum-duration/);
    });
    await createAgentIdentity(agentIdentity(aid({ duration: '10m' })));
    await createAgentIdentity(agentIdentity(aid({})));
  } finally {
    await env.kubectl(['delete', '--ignore-not-found', '-f', join(ROOT, 'deploy', 'admissionpolicy.yaml')]);
  }
});

// ---------------------------------------------------------------- the documented examples

/** Every object of ours in a ```yaml block of README.md and docs/*.md: what a reader copies must be accepted as written. */
async function documentedExamples(): Promise<{ file: string; object: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } } }[]> {
  const files = ['README.md', ...(await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
  const found = [];
  for (const file of files) {
    const text = await readFile(join(ROOT, file), 'utf8');
    for (const block of text.matchAll(/^```yaml\n([\s\S]*?)^```/gm)) {
      for (const doc of loadAll(block[1]!)) {
        const o = doc as { apiVersion?: string; kind?: string; metadata?: { name: string; namespace?: string } } | null;
        if (o?.apiVersion === API_VERSION && o.metadata) found.push({ file, object: o as never });
      }
    }
  }
  return found;
}

test('every AgentIdentity, TrustDomain and ClusterFederatedTrustDomain example in the README and docs/ is accepted as written (server-side dry run)', async () => {
  const examples = await documentedExamples();
  assert.ok(examples.some((e) => e.file === 'README.md' && e.object.kind === AGENT_IDENTITY.kind), 'the README has AgentIdentity examples');
  const plural: Record<string, string> = { [AGENT_IDENTITY.kind]: AGENT_IDENTITY.plural, [TRUST_DOMAIN.kind]: TRUST_DOMAIN.plural, [CLUSTER_FEDERATED_TRUST_DOMAIN.kind]: CLUSTER_FEDERATED_TRUST_DOMAIN.plural };
  const refused: string[] = [];
  for (const { file, object } of examples) {
    const p = plural[object.kind];
    assert.ok(p, `${file}: unknown kind ${object.kind}`);
    const body = { ...object, metadata: { ...object.metadata, name: uniqueName('doc') } };
    try {
      if (object.kind === AGENT_IDENTITY.kind) {
        await api.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: p, namespace: ns, body: { ...body, metadata: { ...body.metadata, namespace: ns } }, dryRun: 'All' });
      } else {
        await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: p, body, dryRun: 'All' });
      }
    } catch (err) {
      refused.push(`${file}: ${object.kind} ${object.metadata.name}: ${err instanceof ApiException ? String(err.body).slice(0, 400) : String(err)}`);
    }
  }
  assert.deepEqual(refused, [], 'documented examples the API server refuses');
});
