// Where the identity files are, and reading them as one snapshot: the key
// and chain from the kubelet's credential bundle when pod-certificate delivery
// wrote one, else from tls.key and tls.crt.
import { createHash } from 'node:crypto';
import { readFile, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DEFAULT_IDENTITY_DIR, ENV, FILES } from '../api/documents.ts';
import { splitCredentialBundle } from './credential-bundle.ts';
import { IdentityError } from './errors.ts';

export interface IdentityFiles {
  certificate: string;
  privateKey: string;
  bundle: string;
  policy: string;
  /** federated-bundles.json: the foreign trust domains' Roots; optional (absent: this agent trusts only its own trust domain). */
  federatedBundles?: string;
  /** The kubelet's credential bundle (key, then chain); when the file exists it is read instead of certificate and privateKey. */
  credentialBundle?: string;
}

/**
 * One file's path. An explicit `dir` holds every file. Otherwise each comes
 * from its own env variable (AGENT_IDENTITY_CERT_FILE, …), else from
 * AGENT_IDENTITY_DIR, else from /var/run/agentidentity.
 */
function filePath(key: keyof typeof FILES, dir: string | undefined, env: NodeJS.ProcessEnv): string {
  return (dir === undefined ? env[ENV[key]] : undefined) ?? join(dir ?? env[ENV.dir] ?? DEFAULT_IDENTITY_DIR, FILES[key]);
}

/** tls.crt, tls.key, ca.crt, policy.json and federated-bundles.json: see filePath for where. */
export function identityFiles(dir?: string, env: NodeJS.ProcessEnv = process.env): IdentityFiles {
  const pick = (key: keyof typeof FILES) => filePath(key, dir, env);
  return { certificate: pick('certificate'), privateKey: pick('privateKey'), bundle: pick('bundle'), policy: pick('policy'), federatedBundles: pick('federatedBundles') };
}

/** identityFiles() and the credential bundle (AGENT_IDENTITY_CREDENTIAL_BUNDLE_FILE, or credential-bundle.pem beside them). */
export function identityFilesWithCredentialBundle(dir?: string, env: NodeJS.ProcessEnv = process.env): IdentityFiles {
  return { ...identityFiles(dir, env), credentialBundle: filePath('credentialBundle', dir, env) };
}

type Piece = 'certificate' | 'privateKey' | 'bundle' | 'policy';

/**
 * The texts read; `from` names the file each came from, for messages (the credential bundle for both key and chain).
 * `federatedBundles` is undefined when that file does not exist.
 */
export type IdentityContents = Record<Piece, string> & { federatedBundles?: string; from: Record<Piece | 'federatedBundles', string>; digest: string };

type Readable = keyof IdentityFiles;

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

/** Whether the directory's `..data` now names another generation than the one this read resolved. */
async function swappedSince(file: string, dataDirs: Map<string, Promise<string | undefined>>): Promise<boolean> {
  const dir = dirname(file);
  const now = await realpath(join(dir, DATA_LINK)).catch(() => undefined);
  return now !== (await dataDirs.get(dir));
}

/**
 * Reads the files; `digest` changes exactly when any content does. The
 * credential bundle, when it exists, is one read, so its key and chain are
 * always one generation's.
 */
export async function readIdentityFiles(files: IdentityFiles): Promise<IdentityContents> {
  const dataDirs = new Map<string, Promise<string | undefined>>();
  const read = async (key: Readable, path: string, optional = false): Promise<string | undefined> => {
    try {
      return await readFile(await snapshotPath(path, dataDirs), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Absent only if the generation read is still the current one: otherwise the kubelet swapped ..data
      // and removed the generation mid-read, which must be read again, never taken as "no file".
      if (optional && code === 'ENOENT' && !(await swappedSince(path, dataDirs))) return undefined;
      // Only the code: an fs message is harmless, but keep every message in one voice.
      throw new IdentityError(`cannot read ${FILES[key]} at ${path}: ${code ?? 'read failed'}`);
    }
  };
  const credentialBundle = files.credentialBundle === undefined ? undefined : await read('credentialBundle', files.credentialBundle, true);
  const bundlePath = files.credentialBundle!;
  const keyAndChain = credentialBundle !== undefined
    ? { ...splitCredentialBundle(credentialBundle, bundlePath), from: { certificate: bundlePath, privateKey: bundlePath } }
    : {
      certificate: (await read('certificate', files.certificate))!,
      privateKey: (await read('privateKey', files.privateKey))!,
      from: { certificate: files.certificate, privateKey: files.privateKey },
    };
  const texts: Record<Piece, string> = { certificate: keyAndChain.certificate, privateKey: keyAndChain.privateKey, bundle: (await read('bundle', files.bundle))!, policy: (await read('policy', files.policy))! };
  // Optional: the kubelet leaves it out while the TrustDomain federates with nobody.
  const federatedBundles = files.federatedBundles === undefined ? undefined : await read('federatedBundles', files.federatedBundles, true);
  const hash = createHash('sha256');
  for (const [key, text] of Object.entries({ ...texts, ...(federatedBundles === undefined ? {} : { federatedBundles }) })) hash.update(`${key}\0${text.length}\0${text}`);
  return {
    ...texts, ...(federatedBundles === undefined ? {} : { federatedBundles }),
    from: { ...keyAndChain.from, bundle: files.bundle, policy: files.policy, federatedBundles: files.federatedBundles ?? FILES.federatedBundles }, digest: hash.digest('hex'),
  };
}
