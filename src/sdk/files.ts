// Where the identity files are, and reading all four as one snapshot.
import { createHash } from 'node:crypto';
import { readFile, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DEFAULT_IDENTITY_DIR, ENV, FILES } from '../api/documents.ts';
import { IdentityError } from './errors.ts';

export interface IdentityFiles {
  certificate: string;
  privateKey: string;
  bundle: string;
  policy: string;
}

/**
 * An explicit `dir` holds all four files. Otherwise each file comes from its
 * own env variable (AGENT_IDENTITY_CERT_FILE, …), else from AGENT_IDENTITY_DIR,
 * else from /var/run/agentidentity.
 */
export function identityFiles(dir?: string, env: NodeJS.ProcessEnv = process.env): IdentityFiles {
  const base = dir ?? env[ENV.dir] ?? DEFAULT_IDENTITY_DIR;
  const pick = (key: keyof typeof FILES) => (dir === undefined ? env[ENV[key]] : undefined) ?? join(base, FILES[key]);
  return { certificate: pick('certificate'), privateKey: pick('privateKey'), bundle: pick('bundle'), policy: pick('policy') };
}

export type IdentityContents = IdentityFiles & { digest: string };

const DATA_LINK = '..data';

/**
 * Kubernetes writes a Secret or ConfigMap volume as a timestamped directory
 * and publishes it by atomically renaming the `..data` symlink; each file is
 * a symlink `name -> ..data/name`. Resolving `..data` once per directory and
 * reading every file below that target gives one generation even mid-swap.
 */
async function snapshotPath(file: string, dataDirs: Map<string, Promise<string | undefined>>): Promise<string> {
  const dir = dirname(file);
  if (!dataDirs.has(dir)) dataDirs.set(dir, realpath(join(dir, DATA_LINK)).catch(() => undefined));
  const data = await dataDirs.get(dir);
  if (data === undefined) return file;
  const link = await readlink(file).catch(() => undefined);
  return link === join(DATA_LINK, basename(file)) ? join(data, basename(file)) : file;
}

/** Reads the four files; `digest` changes exactly when any content does. */
export async function readIdentityFiles(files: IdentityFiles): Promise<IdentityContents> {
  const dataDirs = new Map<string, Promise<string | undefined>>();
  const entries = Object.entries(files) as [keyof IdentityFiles, string][];
  const hash = createHash('sha256');
  const out = {} as IdentityFiles;
  for (const [key, path] of entries) {
    let text: string;
    try {
      text = await readFile(await snapshotPath(path, dataDirs), 'utf8');
    } catch (err) {
      // Only the code: an fs message is harmless, but keep every message in one voice.
      throw new IdentityError(`cannot read ${FILES[key]} at ${path}: ${(err as NodeJS.ErrnoException).code ?? 'read failed'}`);
    }
    hash.update(`${key}\0${text.length}\0${text}`);
    out[key] = text;
  }
  return { ...out, digest: hash.digest('hex') };
}
