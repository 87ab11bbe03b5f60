// The SDK refuses an older Node.js when it is imported, naming the reason,
// rather than failing later with "tls.key: could not be parsed" for a valid
// key: src/pki loads keys with KeyObject.toCryptoKey, which Node 20 lacks.
// The minimum is package.json's `engines` (a unit test keeps them equal).
export const MIN_NODE_VERSION = '22.19.0';

/** Why this Node.js version (e.g. "20.20.2" or "v20.20.2") cannot run the SDK, or undefined if it can. */
export function unsupportedNodeVersion(version: string): string | undefined {
  const bare = version.replace(/^v/, '');
  const have = bare.split('.').map(Number);
  const need = MIN_NODE_VERSION.split('.').map(Number);
  for (const [i, n] of need.entries()) {
    const h = have[i] ?? 0;
    if (h > n) return undefined;
    if (h < n) return `agent-identity-operator/sdk needs Node >= ${need[0]}.${need[1]}; this is v${bare}`;
  }
  return undefined;
}

// Imported first by the SDK entry, so this runs before any key is touched.
const problem = unsupportedNodeVersion(process.versions.node);
if (problem) throw new Error(problem);
