// The package as an agent developer gets it: `npm pack` on a copy of the
// sources (so `prepare` builds dist/ from scratch), the tarball installed into
// an empty project, the operator's own dependencies deleted there, and the
// SDK example run from it over mutual TLS. No Kubernetes needed.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdir, mkdtemp, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { agentID, fileSet, type IssuedIdentity, makeTrustDomain, policyFor, writePlainDir } from '../support/sdk-pki.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const PACKAGE = 'agent-identity-operator';
// What a git clone holds that the build and the tarball need.
const SOURCES = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'src'];
// Dependencies only the operator, its CLI and its metrics use.
const OPERATOR_ONLY = ['@kubernetes/client-node', 'pino', 'prom-client', 'p-queue', 'js-yaml'];
const WAIT_MS = 20_000;
const INSTALL_MS = 180_000;

// npm and its lifecycle scripts run on the project's Node, as under make.
const env = { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${dirname(process.execPath)}:${process.env.PATH}` };
const exec = promisify(execFile);
const npm = (cwd: string, ...args: string[]) => exec('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline'], { cwd, env, timeout: INSTALL_MS, maxBuffer: 16 << 20 });

/** A process whose stdout and stderr are read together, as a person would. */
class Output {
  readonly child: ChildProcess;
  text = '';
  constructor(command: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }) {
    this.child = spawn(command, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d) => (this.text += d));
    this.child.stderr!.on('data', (d) => (this.text += d));
  }

  /** The first match of `pattern`; fails when the process exits or after 20 s without it. */
  async waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const m = pattern.exec(this.text);
      if (m) return m;
      if (this.child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${pattern} in: ${this.text}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill();
    await exited;
  }
}

/** Every node on PATH older than the SDK supports, outside node_modules, with its version. */
async function olderNodes(): Promise<{ path: string; version: string }[]> {
  const { stdout } = await exec('which', ['-a', 'node']).catch(() => ({ stdout: '' }));
  const found = new Map<string, string>();
  for (const path of stdout.split('\n').filter((p) => p && !p.includes('node_modules'))) {
    const real = await realpath(path);
    if (found.has(real)) continue;
    const version = (await exec(real, ['--version'])).stdout.trim();
    if (Number(version.slice(1).split('.')[0]) < 22) found.set(real, version);
  }
  return [...found].map(([path, version]) => ({ path, version }));
}

let base: string;
let project: string;
let tarballFiles: string[];
const running: Output[] = [];

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'sdk-pack-'));
  const checkout = join(base, 'checkout');
  await mkdir(checkout);
  for (const entry of SOURCES) await cp(join(ROOT, entry), join(checkout, entry), { recursive: true });
  await symlink(join(ROOT, 'node_modules'), join(checkout, 'node_modules'));
  const packed = JSON.parse((await npm(checkout, 'pack', '--json', '--pack-destination', base)).stdout.replace(/^[^[]*/, '')) as { filename: string; files: { path: string }[] }[];
  tarballFiles = packed[0]!.files.map((f) => f.path);

  project = join(base, 'agent');
  await mkdir(project);
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'an-agent', private: true, type: 'module' }));
  await npm(project, 'install', join(base, packed[0]!.filename));
});

after(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await rm(base, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the built JavaScript, its declarations and the README, not the sources, tests or source maps', () => {
    for (const f of ['package.json', 'README.md', 'dist/sdk/index.js', 'dist/sdk/index.d.ts', 'dist/main.js', 'dist/cli/main.js']) {
      assert.ok(tarballFiles.includes(f), `${f} missing from ${tarballFiles.join(' ')}`);
    }
    assert.deepEqual(
      tarballFiles.filter((f) => !f.startsWith('dist/') && f !== 'package.json' && f !== 'README.md'),
      [],
    );
    assert.deepEqual(tarballFiles.filter((f) => f.endsWith('.map') || f.endsWith('.ts') && !f.endsWith('.d.ts')), []);
  });

  it("loads agent-identity-operator/sdk with the operator's own dependencies deleted, while the operator entry then cannot load", async () => {
    const modules = join(project, 'node_modules');
    for (const dep of OPERATOR_ONLY) {
      assert.ok((await stat(join(modules, dep))).isDirectory(), `${dep} was installed`);
      await rm(join(modules, dep), { recursive: true });
    }
    const load = (entry: string) => exec(process.execPath, ['--input-type=module', '-e', `const m = await import('${entry}'); console.log(Object.keys(m).length)`], { cwd: project, env });
    assert.ok(Number((await load(`${PACKAGE}/sdk`)).stdout) > 10);
    await assert.rejects(load(PACKAGE), /ERR_MODULE_NOT_FOUND/);
  });

  it('runs the SDK example from the installed package: the peer the policy allows gets an answer, another is refused', async () => {
    const example = await readFile(join(ROOT, 'examples/sdk/agent.ts'), 'utf8');
    const installed = example.replace("from '../../src/sdk/index.ts'", `from '${PACKAGE}/sdk'`);
    assert.notEqual(installed, example, 'the example imports the SDK from src/sdk/index.ts');
    await writeFile(join(project, 'agent.ts'), installed);

    const td = await makeTrustDomain();
    const planner = await td.issue('planner');
    const orchestrator = await td.issue('orchestrator');
    const intruder = await td.issue('intruder');
    const dir = async (who: IssuedIdentity, policy = policyFor(who)) => {
      const d = join(base, 'identities', who.spiffeID.split('/').pop()!);
      await writePlainDir(d, fileSet(who, td.bundlePem, policy));
      return d;
    };
    const plannerPolicy = policyFor(planner, { allow: [{ spiffeID: orchestrator.spiffeID, rule: 'allow[0]: agent agents/orchestrator' }] });
    const agent = (identityDir: string, extra: Record<string, string> = {}) => {
      const p = new Output(process.execPath, ['agent.ts'], { cwd: project, env: { ...env, AGENT_IDENTITY_DIR: identityDir, PORT: '0', ...extra } });
      running.push(p);
      return p;
    };

    const server = agent(await dir(planner, plannerPolicy));
    const port = (await server.waitFor(/serving on :(\d+)/))[1]!;
    const peer = { PEER_URL: `https://127.0.0.1:${port}/`, PEER_SPIFFE_ID: planner.spiffeID };

    const allowed = agent(await dir(orchestrator), peer);
    const body = JSON.parse((await allowed.waitFor(/peer answered 200: (.*)\n/))[1]!) as Record<string, string>;
    assert.deepEqual(body, { to: agentID('planner'), from: agentID('orchestrator'), allowedBy: 'allow[0]: agent agents/orchestrator' });

    const refused = agent(await dir(intruder), peer);
    await refused.waitFor(new RegExp(`calling ${planner.spiffeID} failed: `));
    await server.waitFor(new RegExp(`refused a caller: peer ${intruder.spiffeID} is not allowed by the policy of ${planner.spiffeID}`));
    assert.doesNotMatch(refused.text, /peer answered/);
  });

  it('names the Node.js it needs, at import, on an older Node (the one on PATH, and a faked 20.0.0)', async () => {
    const runs = (await olderNodes()).map(({ path, version }) => ({ node: path, preload: [] as string[], version }));
    // The entry's check runs before anything else loads, also where no older Node is installed.
    const fake = `data:text/javascript,Object.defineProperty(process.versions, 'node', { value: '20.0.0' })`;
    runs.push({ node: process.execPath, preload: ['--import', fake], version: 'v20.0.0' });
    for (const { node, preload, version } of runs) {
      const attempt = exec(node, [...preload, '--input-type=module', '-e', `await import('${PACKAGE}/sdk')`], { cwd: project, env });
      await assert.rejects(attempt, (err: { stderr: string }) => {
        assert.match(err.stderr, new RegExp(`Error: ${PACKAGE}/sdk needs Node >= 22\\.19; this is ${version.replaceAll('.', '\\.')}\\n`));
        return true;
      });
    }
  });
});
