// `agent-identity proxy` runs beside every agent and never talks to the API
// server: it must not load the kube client, the kubeconfig reader or their
// libraries (undici, js-yaml), which cost each sidecar megabytes of RSS.
// A module hook lists every module the CLI process loads.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';

const CLI = join(resolve(import.meta.dirname, '..', '..', '..'), 'src', 'cli', 'main.ts');
// Prints each loaded module's URL on stderr, prefixed so the CLI's own output stays apart.
const HOOK = `data:text/javascript,${encodeURIComponent(
  "import { registerHooks } from 'node:module'; registerHooks({ load(url, context, next) { process.stderr.write('loaded ' + url + '\\n'); return next(url, context); } });",
)}`;
const KUBE = /\/src\/kube\/(client|config|transport)\.ts$|\/node_modules\/(undici|js-yaml|@kubernetes)\//;

function loadedBy(...args: string[]): Promise<{ code: number; stdout: string; loaded: string[] }> {
  return new Promise((res) => {
    execFile(process.execPath, ['--import', HOOK, CLI, ...args], (err, stdout, stderr) => {
      const loaded = stderr.split('\n').filter((l) => l.startsWith('loaded ')).map((l) => l.slice('loaded '.length));
      res({ code: err === null ? 0 : Number(err.code), stdout, loaded });
    });
  });
}

describe('agent-identity proxy loads no Kubernetes client', () => {
  it('proxy --help loads the proxy and the SDK, and nothing of src/kube but its errors', async () => {
    const { code, stdout, loaded } = await loadedBy('proxy', '--help');
    assert.equal(code, 0);
    assert.match(stdout, /--outbound-port PORT/);
    assert.ok(loaded.some((u) => u.endsWith('/src/proxy/index.ts')), 'the hook sees the proxy load');
    assert.deepEqual(loaded.filter((u) => KUBE.test(u)), []);
  });

  it('the kube commands still load the client (the hook would see it)', async () => {
    const { code, loaded } = await loadedBy('status', '--kubeconfig=/nonexistent/kubeconfig');
    assert.equal(code, 2);
    assert.ok(loaded.some((u) => u.endsWith('/src/kube/client.ts')), `kube client loaded: ${loaded.filter((u) => u.includes('/src/')).join(', ')}`);
  });
});
