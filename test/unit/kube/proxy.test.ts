import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proxyFor } from '../../../src/kube/proxy.ts';

const via = (server: string, env: NodeJS.ProcessEnv, proxyUrl?: string) => proxyFor(new URL(server), proxyUrl, env)?.href;

test("proxy-url wins over the environment and applies to every server, loopback too (client-go's http.ProxyURL)", () => {
  assert.equal(via('https://127.0.0.1:6443', { HTTPS_PROXY: 'http://env:1', NO_PROXY: '*' }, 'socks5://p:1080'), 'socks5://p:1080');
});

test('HTTPS_PROXY serves https servers, HTTP_PROXY http ones; the upper-case variable first; no scheme means http://', () => {
  assert.equal(via('https://api.example:443', { HTTPS_PROXY: 'upper:3128', https_proxy: 'http://lower:1' }), 'http://upper:3128/');
  assert.equal(via('https://api.example:443', { https_proxy: 'http://lower:1' }), 'http://lower:1/');
  assert.equal(via('https://api.example:443', { HTTP_PROXY: 'http://plain:1' }), undefined);
  assert.equal(via('http://api.example:80', { HTTP_PROXY: 'http://plain:1' }), 'http://plain:1/');
});

test('NO_PROXY as Go reads it: names and their subdomains, .suffixes, *.suffixes, IPs, CIDRs, ports, and *', () => {
  const env = (NO_PROXY: string) => ({ HTTPS_PROXY: 'http://p:1', NO_PROXY });
  const cases: Array<[string, string, boolean]> = [
    ['https://example.com', 'example.com', false], ['https://api.example.com', 'example.com', false], ['https://notexample.com', 'example.com', true],
    ['https://example.com', '.example.com', true], ['https://api.example.com', '.example.com', false], ['https://api.example.com', '*.example.com', false],
    ['https://10.1.2.3', '10.0.0.0/8', false], ['https://11.1.2.3', '10.0.0.0/8', true], ['https://10.1.2.3', '10.1.2.3', false],
    ['https://api.example.com:6443', 'api.example.com:443', true], ['https://api.example.com:6443', 'api.example.com:6443', false],
    ['https://[fd00::1]:6443', 'fd00::/8', false], ['https://anything', '*', false], ['https://a.b', ' x.y , A.B ', false],
  ];
  for (const [server, noProxy, proxied] of cases) assert.equal(via(server, env(noProxy)) !== undefined, proxied, `${server} with NO_PROXY=${noProxy}`);
});

test('the environment never proxies localhost or a loopback address (Go does not)', () => {
  for (const server of ['https://localhost:6443', 'https://127.0.0.1:6443', 'https://127.9.9.9', 'https://[::1]:6443']) {
    assert.equal(via(server, { HTTPS_PROXY: 'http://p:1' }), undefined, server);
  }
});

test('a proxy of another scheme is refused, naming where it came from', () => {
  assert.throws(() => via('https://k:1', { HTTPS_PROXY: 'ftp://p:1' }), { message: 'HTTPS_PROXY "ftp://p:1" must be an http://, https:// or socks5:// URL' });
});
