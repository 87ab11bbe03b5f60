// The identity proxy beside the agent (spec.proxy), as the webhook injects it:
//   - the sidecar: a native sidecar (an initContainer with restartPolicy
//     Always, Kubernetes 1.33+) that alone mounts the identity, first among
//     the initContainers so that the agent's own init containers can already
//     call out through it, with a startup probe so that the containers after
//     it start only once it accepts connections;
//   - the agent's environment: where to send plain HTTP (HTTP_PROXY), what
//     not to send there (NO_PROXY), and the loopback bind address common
//     frameworks read, so the plaintext app port is not served on the pod IP.
// Pure: names and shapes only; mutate.ts decides where they go.
import { PROXY_CONTAINER } from '../api/names.ts';
import { quantityValue } from '../api/quantity.ts';
import type { ProxyMode, ProxySpec } from '../api/types.ts';
import type { Container, EnvVar, VolumeMount } from './pod.ts';

/** The sidecar's name: reserved in every pod whose identity has spec.proxy (api/names.ts, which the CLI reads too). */
export { PROXY_CONTAINER };

/** Where the proxy serves the agent's outbound calls: 127.0.0.1 only, so only the pod's own containers reach it. */
export const OUTBOUND_PORT = 15001;

/** The sidecar's port name: a Service can target it by name whatever spec.proxy.port is. */
export const PROXY_PORT_NAME = 'agent-proxy';

/** What the cluster admin chose for every injected proxy (chart values → operator flags). */
export interface ProxySidecarConfig {
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  resources: ResourceRequirements;
  /** --proxy-metrics-port: the proxy serves /metrics on the pod IP here; absent: no metrics port. */
  metricsPort?: number;
}

/** The metrics port's name: a PodMonitor can select it by name whatever port the admin chose. */
export const METRICS_PORT_NAME = 'proxy-metrics';

export interface ResourceRequirements {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

export const proxyModeOf = (proxy: ProxySpec): ProxyMode => proxy.mode ?? 'http';

/**
 * Whether two resource requirements ask for the same amounts. The API server
 * rewrites quantities in its canonical form ("0.5" becomes "500m", "1024Mi"
 * "1Gi"), so a pod read back is compared by value, not by spelling.
 */
export function sameResources(a: unknown, b: unknown): boolean {
  const lists = (r: unknown) => (r && typeof r === 'object' ? r as Record<string, unknown> : {});
  const same = (x: unknown, y: unknown) => {
    const [xs, ys] = [lists(x), lists(y)];
    const keys = new Set([...Object.keys(xs), ...Object.keys(ys)]);
    return [...keys].every((k) => {
      const [vx, vy] = [quantityValue(xs[k]), quantityValue(ys[k])];
      return vx !== undefined && vy !== undefined && Math.abs(vx - vy) <= 1e-9 * Math.max(Math.abs(vx), Math.abs(vy));
    });
  };
  const [ra, rb] = [lists(a), lists(b)];
  const fields = new Set([...Object.keys(ra), ...Object.keys(rb)]);
  return [...fields].every((f) => (f === 'requests' || f === 'limits') && same(ra[f], rb[f]));
}

/**
 * The sidecar's command line: the one place it is spelled out, so the contract
 * with `agent-identity proxy` (src/proxy/) changes here only.
 */
export function proxyArgs(proxy: ProxySpec, identityDir: string, metricsPort?: number): string[] {
  return [
    'proxy',
    `--identity-dir=${identityDir}`,
    `--inbound-port=${proxy.port}`,
    `--app-port=${proxy.appPort}`,
    `--mode=${proxyModeOf(proxy)}`,
    `--outbound-port=${OUTBOUND_PORT}`,
    ...(metricsPort === undefined ? [] : [`--metrics-port=${metricsPort}`]),
  ];
}

/**
 * Node's flags for the proxy: a 1 MB young generation, as the operator's
 * 2 MB (Dockerfile). Idle RSS 79/82 MiB (outbound/inbound) instead of 85/88
 * (scripts/proxy-rss.ts, dist, loopback); under load it changes little.
 * --optimize-for-size saved a little more memory but cut the proxies'
 * throughput by more than half. docs/performance.md has the numbers.
 */
export const PROXY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

/**
 * The sidecar's command. It must be spelled out: the image's ENTRYPOINT runs
 * the operator (dist/main.js), which refuses the proxy's arguments. The path is
 * the CLI of package.json's bin in the image's WORKDIR (test/unit/webhook/proxy.test.ts checks both).
 */
export const PROXY_COMMAND: readonly string[] = ['node', ...PROXY_NODE_FLAGS, '/app/dist/cli/main.js'];

const PROXY_URL = `http://127.0.0.1:${OUTBOUND_PORT}`;
const NO_PROXY = 'localhost,127.0.0.1,::1';
const LOOPBACK = '127.0.0.1';

/**
 * What every agent container gets instead of the identity. Both spellings of
 * the proxy variables: curl reads only the lower-case http_proxy, Go and
 * Python's urllib and requests read either. HTTPS_PROXY is left
 * alone: calls that are already TLS (an external API) go out as they are.
 * The bind address: HOST (Node servers, many examples and templates),
 * UVICORN_HOST (uvicorn, FastAPI's server, reads UVICORN_* for its flags),
 * FLASK_RUN_HOST (`flask run`). docs/webhook.md lists the frameworks whose
 * bind address is set in code or on their command line.
 */
export const AGENT_PROXY_ENV: readonly EnvVar[] = [
  { name: 'HTTP_PROXY', value: PROXY_URL },
  { name: 'http_proxy', value: PROXY_URL },
  { name: 'NO_PROXY', value: NO_PROXY },
  { name: 'no_proxy', value: NO_PROXY },
  { name: 'HOST', value: LOOPBACK },
  { name: 'UVICORN_HOST', value: LOOPBACK },
  { name: 'FLASK_RUN_HOST', value: LOOPBACK },
];

// The restricted Pod Security Standard, and a uid of its own (the image's
// nonroot user) so that it does not depend on the pod's securityContext.
const SECURITY_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

/**
 * The sidecar, every field the API server would otherwise default written
 * out (protocol, probe timings, pull policy), so a pod read back compares
 * equal to it. The startup probe is TCP on the inbound port: the proxy opens
 * that port only once its identity is loaded and its outbound listener is up,
 * so "accepts a connection" means "ready", and the kubelet needs nothing else
 * from it. 60 tries a second apart; then the kubelet restarts it.
 */
export function proxyContainer(proxy: ProxySpec, config: ProxySidecarConfig, mount: VolumeMount, env: EnvVar[]): Container {
  return {
    name: PROXY_CONTAINER,
    image: config.image,
    imagePullPolicy: config.imagePullPolicy,
    command: [...PROXY_COMMAND],
    args: proxyArgs(proxy, mount.mountPath, config.metricsPort),
    restartPolicy: 'Always',
    ports: [
      { name: PROXY_PORT_NAME, containerPort: proxy.port, protocol: 'TCP' },
      ...(config.metricsPort === undefined ? [] : [{ name: METRICS_PORT_NAME, containerPort: config.metricsPort, protocol: 'TCP' }]),
    ],
    env,
    volumeMounts: [mount],
    startupProbe: { tcpSocket: { port: proxy.port }, periodSeconds: 1, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 60 },
    securityContext: SECURITY_CONTEXT,
    resources: config.resources,
  };
}
