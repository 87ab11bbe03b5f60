import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { forwardedClientCert, forwardHeaders, peerHeaders } from '../../../src/proxy/headers.ts';

describe('forwardHeaders', () => {
  it('drops identity headers in any case and count, hop-by-hop headers, and headers the Connection header names', () => {
    const out = forwardHeaders([
      'X-Agent-Identity-Peer', 'spiffe://forged/a', 'x-agent-identity-peer', 'spiffe://forged/b',
      'X-Forwarded-Client-Cert', 'Hash=00;URI=spiffe://forged/a',
      'Connection', 'keep-alive, X-Secret-Hop', 'X-Secret-Hop', '1', 'Keep-Alive', 'timeout=5',
      'Proxy-Authorization', 'Basic eA==', 'Proxy-Connection', 'keep-alive', 'Transfer-Encoding', 'chunked',
      'TE', 'trailers', 'Upgrade', 'websocket', 'Host', 'a.svc',
      'Accept', 'a', 'accept', 'b', 'Content-Type', 'application/json',
    ]);
    assert.deepEqual(out, { accept: ['a', 'b'], 'content-type': 'application/json' });
  });
});

describe('forwardedClientCert', () => {
  it('is Envoy\'s Hash (SHA-256 of the DER, hex) then URI', () => {
    const der = new Uint8Array([1, 2, 3]);
    const hash = createHash('sha256').update(der).digest('hex');
    assert.equal(forwardedClientCert(der, 'spiffe://td/ns/a/agent/b'), `Hash=${hash};URI=spiffe://td/ns/a/agent/b`);
    assert.equal(forwardedClientCert(der.buffer, 'spiffe://td/x'), `Hash=${hash};URI=spiffe://td/x`, 'an ArrayBuffer (x509.rawData) hashes the same');
    assert.deepEqual(Object.keys(peerHeaders(der, 'spiffe://td/x')), ['x-agent-identity-peer', 'x-forwarded-client-cert']);
  });
});
