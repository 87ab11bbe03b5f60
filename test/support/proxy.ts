// The identity proxy and Python agents as processes, as they run in a pod:
// `agent-identity proxy` (src/cli/main.ts) beside a Python app that knows
// nothing of certificates (test/support/python-agent.py).
import { PeerProcess, type PeerEvent } from './sdk-process.ts';

const CLI = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const PYTHON_AGENT = new URL('./python-agent.py', import.meta.url).pathname;

export interface ProxyProcess {
  process: PeerProcess;
  inboundPort?: number;
  outboundPort?: number;
  metricsPort?: number;
}

/** Starts `agent-identity proxy ARGS` (with `env`, as a container's) and waits for its listening line. */
export async function startProxyProcess(args: string[], env?: NodeJS.ProcessEnv): Promise<ProxyProcess> {
  const process_ = new PeerProcess([CLI, 'proxy', ...args], { command: process.execPath, env });
  const listening = await process_.waitFor('listening');
  const port = (side: unknown) => (side as { port: number } | undefined)?.port;
  return { process: process_, inboundPort: port(listening.inbound), outboundPort: port(listening.outbound), metricsPort: port(listening.metrics) };
}

/** The Python echo app on 127.0.0.1; resolves with its port. */
export async function startPythonApp(): Promise<{ process: PeerProcess; port: number }> {
  const app = new PeerProcess([PYTHON_AGENT, 'server'], { command: 'python3' });
  const { port } = await app.waitFor('listening');
  return { process: app, port: port as number };
}

/** A Python client calling `url` through the proxy named in HTTP_PROXY, as any agent would. */
export function pythonCall(url: string, outboundPort: number, body?: string): PeerProcess {
  const env = { ...process.env, HTTP_PROXY: `http://127.0.0.1:${outboundPort}`, http_proxy: `http://127.0.0.1:${outboundPort}`, NO_PROXY: '', no_proxy: '' };
  return new PeerProcess([PYTHON_AGENT, 'get', url, ...(body === undefined ? [] : [body])], { command: 'python3', env });
}

export interface Answer {
  status: number;
  body: string;
}

/** Runs one Python call to completion. */
export async function pythonGet(url: string, outboundPort: number, body?: string): Promise<Answer> {
  const client = pythonCall(url, outboundPort, body);
  try {
    const e: PeerEvent = await client.waitFor('response');
    return { status: e.status as number, body: e.body as string };
  } finally {
    await client.stop();
  }
}

/** The request as the Python app received it (from its JSON echo). */
export interface Echo {
  method: string;
  path: string;
  bodyBytes: number;
  headers: [string, string][];
}

export const headerValues = (echo: Echo, name: string) => echo.headers.filter(([k]) => k === name).map(([, v]) => v);
