// A real SPIRE server (scripts/spire-server.sh builds the pinned release) as a
// federation partner: its own trust domain, a sqlite datastore and the admin
// socket in a temp dir, its bundle endpoint (https_spiffe) on 127.0.0.1, and
// one `federates_with` that points at our bundle endpoint. The HCL is the one
// docs/federation.md ("With SPIRE") shows.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { eventually } from './eventually.ts';
import { freePort } from './ports.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Builds (first run only) or finds a Go test tool through its script in scripts/; its build log goes to our stderr. */
export function goTool(script: 'spire-server.sh' | 'spiffe-peer.sh'): string {
  return execFileSync('bash', [join(ROOT, 'scripts', script)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

export interface SpirePartner {
  trustDomain: string;
  dir: string;
  /** The SPIFFE ID SPIRE's bundle endpoint presents (https_spiffe): its server's own SVID. */
  endpointSPIFFEID: string;
  bundleEndpointURL: string;
  /** `spire-server <args> -socketPath <ours>`; resolves to stdout, rejects with stderr. */
  cli(args: string[]): Promise<string>;
  output(): string;
  stop(): Promise<void>;
}

export interface SpireFederatesWith { trustDomain: string; bundleEndpointURL: string; endpointSPIFFEID: string }

/**
 * The server configuration: everything local to `dir`, nothing reaching past 127.0.0.1. Ports may be
 * placeholders (`<free port>`): docs/federation.md shows this text, test/unit/docs/spire-hcl.test.ts keeps them equal.
 */
export function spireServerHcl(o: { trustDomain: string; dir: string; serverPort: number | string; bundleEndpointPort: number | string; federatesWith: SpireFederatesWith }): string {
  return `server {
  bind_address = "127.0.0.1"
  bind_port = "${o.serverPort}"
  socket_path = "${o.dir}/api.sock"
  trust_domain = "${o.trustDomain}"
  data_dir = "${o.dir}/data"
  log_level = "DEBUG"
  ca_key_type = "ec-p256"

  federation {
    bundle_endpoint {
      address = "127.0.0.1"
      port = ${o.bundleEndpointPort}
      # The floor: SPIRE warns below 1m, and its fetchers count any lower hint as 1m.
      refresh_hint = "1m"
      profile "https_spiffe" {}
    }
    federates_with "${o.federatesWith.trustDomain}" {
      bundle_endpoint_url = "${o.federatesWith.bundleEndpointURL}"
      bundle_endpoint_profile "https_spiffe" {
        endpoint_spiffe_id = "${o.federatesWith.endpointSPIFFEID}"
      }
    }
  }
}

plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${o.dir}/data/datastore.sqlite3"
    }
  }
  KeyManager "memory" {
    plugin_data {}
  }
}
`;
}

export async function startSpire(bin: string, o: { trustDomain: string; federatesWith: SpireFederatesWith }): Promise<SpirePartner> {
  const dir = mkdtempSync(join(tmpdir(), 'aio-spire-'));
  const [serverPort, bundleEndpointPort] = [await freePort(), await freePort()];
  const config = join(dir, 'server.conf');
  writeFileSync(config, spireServerHcl({ ...o, dir, serverPort, bundleEndpointPort }));
  const proc: ChildProcess = spawn(bin, ['run', '-config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const socketPath = join(dir, 'api.sock');
  const cli = (args: string[]) => new Promise<string>((res, rej) =>
    execFile(bin, [...args, '-socketPath', socketPath], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
      err ? rej(new Error(`spire-server ${args.join(' ')}: ${stderr || stdout || err.message}`)) : res(stdout)));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await eventually(async () => {
      if (proc.exitCode !== null) throw new Error(`spire-server exited ${proc.exitCode}: ${out.slice(-2000)}`);
      return (await cli(['healthcheck'])).includes('healthy');
    }, { what: 'spire-server to be healthy', timeoutMs: 60_000, intervalMs: 250 });
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    trustDomain: o.trustDomain, dir, cli, stop, output: () => out,
    endpointSPIFFEID: `spiffe://${o.trustDomain}/spire/server`,
    bundleEndpointURL: `https://127.0.0.1:${bundleEndpointPort}`,
  };
}
