// The module layering of DESIGN.md and docs/architecture.md's layout, checked on
// every `make test`: which folder may import which, no import cycles between
// files or folders, and no I/O in the pure core. A violation fails the build.
// An entry ending in .ts is one file of another folder.
const ours = (entries) => `^src/(${entries.map((e) => (e.endsWith('.ts') ? e.replace('.', '[.]') + '$' : `${e}/`)).join('|')})`;
// The ordered-checks shape (cert-manager's policy chain): pure, imports nothing of
// ours, and used by the pure tenancy rules and by admission as well as by controllers.
const CHECKS = 'controller/checks.ts';
// The reconcilers may import everything above them, and each other (cycles are refused below).
const RECONCILER = ['api', 'pki', 'ca', 'policy', 'kube', 'controller'];
// A folder may import itself, plus these of ours.
const LAYERS = {
  api: [],
  pki: ['api'],
  ca: ['api', 'pki'],
  policy: ['api', 'pki', CHECKS],
  kube: ['api'],
  controller: ['api', 'kube'],
  trust: RECONCILER,
  identity: [...RECONCILER, 'trust', 'signer'],
  signer: [...RECONCILER, 'trust', 'identity'],
  // Bundle endpoints and partners' bundles: reconcilers (publisher, fetcher) and the endpoint every replica serves.
  federation: [...RECONCILER, 'trust'],
  // The webhook's CA and serving certificate: a reconciler of the names and patches the webhook serves by.
  'webhook-certificates': [...RECONCILER, 'webhook'],
  webhook: ['api', 'kube', 'pki', 'policy', CHECKS],
  // The audit record (audit/record.ts, types only): the SDK and the proxy hand one to the caller per decision.
  // The SDK also writes the proxy's audit lines (line.ts, sink.ts: node:fs only), never its metrics (prom-client).
  audit: [],
  sdk: ['api', 'pki', 'audit/record.ts', 'audit/line.ts', 'audit/sink.ts'],
  // The identity proxy: the SDK's engine, no Kubernetes client (it reads the mounted files only).
  proxy: ['api', 'pki', 'sdk', 'audit', 'telemetry'],
  cli: ['api', 'kube', 'pki', 'sdk', 'proxy', 'audit'],
  // The /healthz, /readyz, /metrics listener the operator and the proxy share.
  telemetry: [],
};
// Federation's decisions and its bundle codec are pure like src/pki (the reconcilers beside them do the I/O).
const FEDERATION_PURE = ['federation/document.ts', 'federation/publication.ts', 'federation/refresh.ts', 'federation/endpoint-svid.ts'];
// Core modules a pure folder may use: none of them touches a file, a socket or a process.
const PURE_CORE = '^(node:)?(crypto|buffer|util)$';

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'An import cycle between files.', from: {}, to: { circular: true } },
    { name: 'no-circular-folders', severity: 'error', comment: 'An import cycle between folders.', scope: 'folder', from: {}, to: { circular: true } },
    ...Object.entries(LAYERS).map(([folder, may]) => ({
      name: `layer-${folder}`,
      severity: 'error',
      comment: `src/${folder}/ may import only ${may.length ? may.map((f) => `src/${f}/`).join(', ') : 'nothing of ours'} (DESIGN.md, "Modules, and what each may import").`,
      from: { path: `^src/${folder}/` },
      to: { path: '^src/', pathNot: [`^src/${folder}/`, ...(may.length ? [ours(may)] : [])] },
    })),
    {
      name: 'checks-stand-alone',
      severity: 'error',
      comment: `src/${CHECKS} is imported by pure folders and by admission: it imports nothing of ours.`,
      from: { path: ours([CHECKS]) },
      to: { path: '^src/' },
    },
    {
      name: 'one-api-client',
      severity: 'error',
      comment: 'Only src/kube/ talks to the API server (over undici): everything else goes through it.',
      from: { path: '^src/', pathNot: '^src/kube/' },
      to: { path: 'node_modules/(@kubernetes/client-node|undici)/' },
    },
    {
      name: 'client-node-types-only',
      severity: 'error',
      comment: 'client-node is not used at runtime (issue 12: its generated API costs ~32 MB; issue 17: one owner of the kubeconfig): src/ may import its types only.',
      from: { path: '^src/' },
      to: { path: 'node_modules/@kubernetes/client-node/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'pure-core-no-io',
      severity: 'error',
      comment: 'src/pki, src/policy, src/api, src/ca and src/controller/checks.ts are pure functions over bytes: no file, network, process or logging I/O.',
      from: { path: ours(['pki', 'policy', 'api', 'ca', CHECKS, ...FEDERATION_PURE]) },
      to: { dependencyTypes: ['core'], pathNot: PURE_CORE },
    },
    {
      name: 'pure-core-no-io-packages',
      severity: 'error',
      comment: 'src/pki, src/policy, src/api, src/ca and src/controller/checks.ts use only the X.509 library (and the metadata shim it needs) among npm packages.',
      from: { path: ours(['pki', 'policy', 'api', 'ca', CHECKS, ...FEDERATION_PURE]) },
      to: { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown'], pathNot: 'node_modules/(@peculiar/x509|reflect-metadata)/' },
    },
    {
      name: 'no-wiring-from-modules',
      severity: 'error',
      comment: 'The files at the top of src/ wire the folders together; a folder that imports them turns the layering upside down.',
      from: { path: '^src/[^/]+/' },
      to: { path: '^src/[^/]+[.]ts$' },
    },
    { name: 'not-to-unresolvable', severity: 'error', comment: 'An import that resolves to nothing.', from: {}, to: { couldNotResolve: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // TypeScript 7 has no JS API for dependency-cruiser yet, so swc parses; it keeps type-only imports, which count for layering too.
    parser: 'swc',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts'] },
  },
};
