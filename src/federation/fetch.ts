// Fetching a partner's bundle document from its bundle endpoint (SPIFFE Trust
// Domain and Bundle, 5.2). The endpoint is not ours and may be hostile or
// broken: the whole exchange has one deadline, the body is cut off past the
// size cap, redirects are not followed, and every failure comes back as a
// reason a person can act on (FetchFailure). https_spiffe authenticates the
// endpoint by its X.509-SVID alone: it must chain to the foreign trust
// domain's current Roots and carry exactly the expected SPIFFE ID (no DNS
// name check, as the spec says); https_web is ordinary Web PKI (Node's CA
// store, NODE_EXTRA_CA_CERTS for a private one) with a host name check.
import { request } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import type { X509Certificate } from '@peculiar/x509';
import type { BundleEndpointProfileType } from '../api/types.ts';
import { certificatesToPem } from '../pki/pem.ts';
import { MAX_BUNDLE_DOCUMENT_BYTES } from './document.ts';

export type FetchFailureReason = 'FetchTimeout' | 'BundleTooLarge' | 'TLSError' | 'WrongSPIFFEID' | 'HTTPError' | 'FetchFailed';

export class FetchFailure extends Error {
  readonly reason: FetchFailureReason;
  constructor(reason: FetchFailureReason, message: string) {
    super(message);
    this.name = 'FetchFailure';
    this.reason = reason;
  }
}

export interface FetchRequest {
  url: string;
  profile: { type: BundleEndpointProfileType; endpointSPIFFEID?: string };
  /** https_spiffe: the foreign trust domain's Roots held now. */
  roots: readonly X509Certificate[];
  timeoutMs: number;
  maxBytes?: number;
}

/** The URI SANs of a peer certificate as Node reports them ("URI:spiffe://...", comma-separated). */
function uriSANs(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? '').split(/,\s*/).filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|CERT_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH|ERR_TLS_CERT_ALTNAME)/;

export function fetchBundleDocument(r: FetchRequest): Promise<Buffer> {
  if (!/^https:\/\//i.test(r.url)) return Promise.reject(new FetchFailure('FetchFailed', `${r.url} is not an https:// URL`));
  const maxBytes = r.maxBytes ?? MAX_BUNDLE_DOCUMENT_BYTES;
  const where = r.url;
  const spiffe = r.profile.type === 'https_spiffe';
  let wrongID: string | undefined;
  return new Promise<Buffer>((resolve, reject) => {
    let settled = false;
    const fail = (f: FetchFailure) => { if (!settled) { settled = true; clearTimeout(deadline); req.destroy(); reject(f); } };
    const req = request(r.url, {
      method: 'GET', agent: false, headers: { accept: 'application/json' },
      ...(spiffe ? {
        ca: certificatesToPem(r.roots),
        // Called only after the chain verified against `ca`: the SVID must name exactly the expected endpoint.
        checkServerIdentity: (_host: string, cert: PeerCertificate) => {
          const uris = uriSANs(cert);
          if (uris.length === 1 && uris[0] === r.profile.endpointSPIFFEID) return undefined;
          wrongID = uris.join(', ') || 'no SPIFFE ID';
          return new Error('wrong SPIFFE ID');
        },
      } : {}),
    }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        fail(new FetchFailure('HTTPError', `${where} answered HTTP ${res.statusCode}${res.statusCode && res.statusCode >= 300 && res.statusCode < 400 ? ' (redirects are not followed)' : ''}`));
        return;
      }
      const declared = Number(res.headers['content-length']);
      if (declared > maxBytes) {
        fail(new FetchFailure('BundleTooLarge', `${where} announced ${declared} bytes, more than the ${maxBytes} accepted`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) fail(new FetchFailure('BundleTooLarge', `${where} sent more than the ${maxBytes} bytes accepted`));
        else chunks.push(c);
      });
      res.on('end', () => { if (!settled) { settled = true; clearTimeout(deadline); resolve(Buffer.concat(chunks)); } });
      res.on('error', (err) => fail(new FetchFailure('FetchFailed', `${where}: ${err.message}`)));
    });
    const deadline = setTimeout(() => fail(new FetchFailure('FetchTimeout', `${where} did not answer with a whole bundle within ${r.timeoutMs} ms`)), r.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (wrongID !== undefined) fail(new FetchFailure('WrongSPIFFEID', `${where} presented ${wrongID}, not ${r.profile.endpointSPIFFEID}`));
      else if (TLS_CODES.test(err.code ?? '')) fail(new FetchFailure('TLSError', `${where}: TLS ${err.code}${spiffe ? ' (the endpoint\'s certificate does not chain to the trust domain\'s current bundle)' : ''}`));
      else fail(new FetchFailure('FetchFailed', `${where}: ${err.code ?? err.message}`));
    });
    req.end();
  });
}
