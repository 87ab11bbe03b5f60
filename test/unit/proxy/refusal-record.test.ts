import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { refusalRecord } from '../../../src/proxy/index.ts';

const LOCAL = 'spiffe://cluster.local/ns/a/agent/orchestrator';

describe('refusalRecord: a refusal before any request policy is an audit decision too', () => {
  it('an egress refusal keeps the request and names the identity that claims the host', () => {
    const r = refusalRecord(LOCAL, {
      direction: 'outbound', reason: 'EgressDenied', peer: 'spiffe://cluster.local/ns/a/agent/db', message: 'egress … refused',
      request: { method: 'POST', path: '/mcp', host: 'db.a.svc' },
    });
    assert.deepEqual({ ...r, time: undefined }, {
      time: undefined, direction: 'egress', local: LOCAL, peer: 'spiffe://cluster.local/ns/a/agent/db', transport: 'http',
      method: 'POST', path: '/mcp', decision: 'deny', rule: null, reason: 'EgressDenied', latencyMs: 0,
    });
  });
  it('a host no identity claims is named by its host', () => {
    const r = refusalRecord(LOCAL, { direction: 'outbound', reason: 'EgressDenied', message: 'm', request: { method: 'GET', path: '/', host: 'example.com' } });
    assert.equal(r.peer, 'example.com');
  });
  it('a peer refused at its handshake is a tls decision without a request', () => {
    const r = refusalRecord(LOCAL, { direction: 'inbound', reason: 'Denied', peer: 'spiffe://cluster.local/ns/b/agent/x', message: 'm' });
    assert.equal(r.transport, 'tls');
    assert.equal(r.direction, 'inbound');
    assert.equal(r.method, '');
    assert.equal(r.peer, 'spiffe://cluster.local/ns/b/agent/x');
  });
  it('a peer without a certificate is unknown', () => {
    assert.equal(refusalRecord(LOCAL, { direction: 'inbound', reason: 'NoCertificate', message: 'm' }).peer, 'unknown');
  });
});

describe('refusalRecord: requests the outbound proxy cannot route', () => {
  it('a request without an absolute URL is an http decision with an unknown peer', () => {
    const r = refusalRecord(LOCAL, { direction: 'outbound', reason: 'NotAProxyRequest', message: 'm', request: { method: 'GET', path: '', host: '' } });
    assert.equal(r.transport, 'http');
    assert.equal(r.peer, 'unknown');
    assert.equal(r.method, 'GET');
  });
});
