// Which proxy a connection to the API server goes through: the cluster's
// proxy-url, else the environment as kubectl reads it (Go's
// http.ProxyFromEnvironment: HTTPS_PROXY or HTTP_PROXY by the server's scheme,
// NO_PROXY, and never for localhost or a loopback address).
import { BlockList, isIP } from 'node:net';

const SCHEMES = ['http:', 'https:', 'socks5:'];

/** A proxy URL as Go reads one: no scheme means http://. */
function proxyURL(value: string, source: string): URL {
  let url: URL | undefined;
  try { url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`); } catch { /* named below */ }
  if (!url || !SCHEMES.includes(url.protocol)) throw new Error(`${source} "${value}" must be an http://, https:// or socks5:// URL`);
  return url;
}

/** Go's httpproxy rules for one NO_PROXY entry: an IP, a CIDR, a domain (".d" or "d" or "*.d"), each with an optional port. */
function matches(entry: string, host: string, port: string): boolean {
  if (entry.includes('/')) {
    const [net, bits] = entry.split('/');
    const family = isIP(net!) === 6 ? 'ipv6' : 'ipv4';
    if (!isIP(net!) || isIP(host) === 0) return false;
    const list = new BlockList();
    try { list.addSubnet(net!, Number(bits), family); } catch { return false; }
    return list.check(host, isIP(host) === 6 ? 'ipv6' : 'ipv4');
  }
  let name = entry;
  let want: string | undefined;
  const withPort = /^(\[.*\]|[^:]+):(\d+)$/.exec(entry);
  if (withPort) { name = withPort[1]!; want = withPort[2]; }
  name = name.replace(/^\[|\]$/g, '');
  if (want !== undefined && want !== port) return false;
  if (isIP(name)) return name === host;
  if (name.startsWith('*.')) name = name.slice(1);
  if (name.startsWith('.')) return host.endsWith(name);
  return host === name || host.endsWith(`.${name}`);
}

/** Whether the environment's proxy is skipped for this server. */
function bypassed(server: URL, noProxy: string): boolean {
  const host = server.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = server.port || (server.protocol === 'https:' ? '443' : '80');
  if (host === 'localhost') return true;
  const loopback = new BlockList();
  loopback.addSubnet('127.0.0.0', 8, 'ipv4');
  loopback.addAddress('::1', 'ipv6');
  if (isIP(host) && loopback.check(host, isIP(host) === 6 ? 'ipv6' : 'ipv4')) return true;
  if (noProxy.trim() === '*') return true;
  return noProxy.split(',').map((e) => e.trim().toLowerCase()).some((e) => e !== '' && matches(e, host, port));
}

/**
 * The proxy for `server`, or undefined to connect directly. proxy-url wins
 * and applies to every server (client-go's http.ProxyURL); the environment is
 * read as Go reads it, the upper-case variable first.
 */
export function proxyFor(server: URL, proxyUrl: string | undefined, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  if (proxyUrl) return proxyURL(proxyUrl, 'proxy-url');
  const name = server.protocol === 'https:' ? (env.HTTPS_PROXY ? 'HTTPS_PROXY' : 'https_proxy') : (env.HTTP_PROXY ? 'HTTP_PROXY' : 'http_proxy');
  const value = env[name];
  if (!value || bypassed(server, env.NO_PROXY ?? env.no_proxy ?? '')) return undefined;
  return proxyURL(value, name);
}
