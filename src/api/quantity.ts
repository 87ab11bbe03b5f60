// Kubernetes resource quantities ("100m", "64Mi", "1e3"): one grammar for the
// operator's --proxy-resources flag and for comparing the sidecar's resources
// with what the API server stored (it rewrites them canonically: "0.5" → "500m").
// Signs and a leading dot, which Kubernetes also reads, are not accepted here.
const QUANTITY = /^([0-9]+(?:\.[0-9]+)?)(?:(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)|[eE]([0-9]+))?$/;

const FACTOR: Record<string, number> = {
  '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** The quantity's value, or undefined when it is not a quantity. */
export function quantityValue(q: unknown): number | undefined {
  const m = typeof q === 'string' ? QUANTITY.exec(q) : null;
  if (!m) return undefined;
  return Number(m[1]) * (m[3] !== undefined ? 10 ** Number(m[3]) : FACTOR[m[2] ?? '']!);
}
