// The agent's identity as mounted in its pod (go-spiffe calls this an
// X509Source): the current SVID, Bundle and policy, reloaded when Kubernetes
// updates the files, never replaced by a set that does not hold together.
import { EventEmitter } from 'node:events';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ENV, type PolicyDocument } from '../api/documents.ts';
import type { Bundle, BundleSet } from '../pki/index.ts';
import { IdentityError } from './errors.ts';
import { type IdentityFiles, identityFilesWithCredentialBundle, readIdentityFiles } from './files.ts';
import { type Material, parseMaterial } from './material.ts';
import type { X509SVID } from './svid.ts';
import { watchDirectories } from './watch.ts';

export interface LoadOptions {
  /**
   * Directory holding ca.crt, policy.json, optionally federated-bundles.json, and either credential-bundle.pem
   * (pod-certificate delivery; preferred when present) or tls.crt and tls.key;
   * default: see identityFiles().
   */
  dir?: string;
  /** Refuse material for any other SPIFFE ID; default: env AGENT_IDENTITY_SPIFFE_ID, if set. */
  spiffeID?: string;
  /** Reload when the files change (default true). */
  watch?: boolean;
  /** The fallback poll, for filesystems whose change events go missing (default 5 s). */
  pollIntervalMs?: number;
}

export interface IdentityEvents {
  /** New material is in use: new connections present and check against it. */
  update: [identity: Identity];
  /** The files changed but do not hold together; the last good material stays in use. */
  reloadError: [error: IdentityError];
}

const DEFAULT_POLL_MS = 5000;
// Coalesces the burst of events one Kubernetes update makes.
const DEBOUNCE_MS = 50;
// A read that raced a swap usually succeeds a moment later.
const RETRY_MS = 250;

export class Identity extends EventEmitter<IdentityEvents> {
  readonly files: IdentityFiles;
  readonly #expectedID: string | undefined;
  #material: Material;
  #queue: Promise<unknown> = Promise.resolve();
  #debounce: NodeJS.Timeout | undefined;
  #stopWatching: (() => void) | undefined;
  #reported: string | undefined;
  #closed = false;

  /** Use loadIdentity(). */
  constructor(files: IdentityFiles, material: Material, expectedID: string | undefined) {
    super();
    this.files = files;
    this.#material = material;
    this.#expectedID = expectedID;
  }

  get svid(): X509SVID {
    return this.#material.svid;
  }

  /** The local trust domain's Bundle (ca.crt). */
  get bundle(): Bundle {
    return this.#material.bundle;
  }

  /** The local Bundle and the foreign ones (federated-bundles.json); each peer is verified against its own trust domain's. */
  get bundles(): BundleSet {
    return this.#material.bundles;
  }

  get policy(): PolicyDocument {
    return this.#material.policy;
  }

  get spiffeID(): string {
    return this.#material.svid.id.toString();
  }

  /**
   * Reads the files now. Resolves true when new material took effect, false
   * when nothing changed; rejects with an IdentityError when the files do not
   * hold together, keeping the current material. Reads never overlap.
   */
  reload(): Promise<boolean> {
    const run = this.#queue.then(() => this.#load());
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #load(): Promise<boolean> {
    const contents = await readIdentityFiles(this.files);
    if (contents.digest === this.#material.digest) return false;
    this.#material = await parseMaterial(contents, this.#expectedID, new Date());
    this.emit('update', this);
    return true;
  }

  /** Starts watching the files' directories; loadIdentity() calls this unless watch is false. */
  watch(pollIntervalMs = DEFAULT_POLL_MS): void {
    if (this.#stopWatching || this.#closed) return;
    const schedule = () => {
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => void this.#refresh(), DEBOUNCE_MS).unref();
    };
    this.#stopWatching = watchDirectories(Object.values(this.files).map((f) => dirname(f)), schedule, pollIntervalMs);
  }

  /** The watcher's reload: retries once, then reports each distinct failure once. */
  async #refresh(): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        await this.reload();
        this.#reported = undefined;
        return;
      } catch (err) {
        if (attempt === 0) {
          await sleep(RETRY_MS, undefined, { ref: false });
          continue;
        }
        const error = err instanceof IdentityError ? err : new IdentityError(String(err));
        if (error.message !== this.#reported) {
          this.#reported = error.message;
          this.emit('reloadError', error);
        }
        return;
      }
    }
  }

  /** Stops watching. Servers and clients built on this identity keep the last material. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#debounce);
    this.#stopWatching?.();
  }
}

/**
 * Reads the identity files once (rejecting with an IdentityError if they do
 * not hold together) and, unless `watch: false`, keeps them current.
 */
export async function loadIdentity(opts: LoadOptions = {}): Promise<Identity> {
  const files = identityFilesWithCredentialBundle(opts.dir);
  const expectedID = opts.spiffeID ?? (process.env[ENV.spiffeID] || undefined);
  const material = await parseMaterial(await readIdentityFiles(files), expectedID, new Date());
  const identity = new Identity(files, material, expectedID);
  if (opts.watch !== false) identity.watch(opts.pollIntervalMs);
  return identity;
}
