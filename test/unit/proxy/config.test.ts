import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { proxyConfig } from '../../../src/proxy/config.ts';
import { DEFAULT_LIMITS } from '../../../src/proxy/limits.ts';

describe('proxyConfig', () => {
  it('flags: both directions, pins, limits', () => {
    const c = proxyConfig(['--identity-dir', '/id', '--inbound-port', '8443', '--app-port', '8080', '--mode', 'tcp', '--outbound-port', '15001',
      '--resolve', 'Planner.agents.svc=10.0.0.1', '--header-timeout', '2s', '--idle-timeout', '1m', '--max-connections', '10', '--max-connections-per-peer', '3', '--max-body-bytes', '100', '--max-header-bytes', '200', '--max-rpc-body-bytes', '300'], {});
    assert.deepEqual(c, {
      identityDir: '/id',
      inbound: { address: '0.0.0.0', port: 8443, appPort: 8080, mode: 'tcp' },
      outbound: { address: '127.0.0.1', port: 15001 },
      resolve: new Map([['planner.agents.svc', '10.0.0.1']]),
      limits: { maxHeaderBytes: 200, maxBodyBytes: 100, headerTimeoutMs: 2000, idleTimeoutMs: 60_000, maxConnections: 10, maxConnectionsPerPeer: 3 },
      requests: { maxBodyBytes: 300 },
      audit: { to: 'stdout' },
      metrics: undefined,
    });
  });

  it('audit log: stdout by default and for -, a file, or off; metrics only with a port', () => {
    const audit = (argv: string[], env = {}) => proxyConfig(['--outbound-port', '1', ...argv], env).audit;
    assert.deepEqual(audit([]), { to: 'stdout' });
    assert.deepEqual(audit(['--audit-log=-']), { to: 'stdout' });
    assert.deepEqual(audit(['--audit-log', 'off']), { to: 'off' });
    assert.deepEqual(audit(['--audit-log', '/var/log/audit.jsonl']), { to: 'file', path: '/var/log/audit.jsonl' });
    assert.deepEqual(audit([], { AGENT_IDENTITY_PROXY_AUDIT_LOG: 'off' }), { to: 'off' });
    assert.deepEqual(proxyConfig(['--outbound-port', '1', '--metrics-port', '15020'], {}).metrics, { address: '0.0.0.0', port: 15020 });
    assert.deepEqual(proxyConfig(['--outbound-port', '1', '--metrics-port', '0', '--metrics-address', '127.0.0.1'], {}).metrics, { address: '127.0.0.1', port: 0 });
  });

  it('the environment fills what flags leave out; a flag wins', () => {
    const c = proxyConfig(['--app-port', '9000'], { AGENT_IDENTITY_DIR: '/env', AGENT_IDENTITY_PROXY_INBOUND_PORT: '8443', AGENT_IDENTITY_PROXY_APP_PORT: '8080', AGENT_IDENTITY_PROXY_RESOLVE: 'a.svc=127.0.0.1, b.svc=::1' });
    assert.equal(c.identityDir, '/env');
    assert.deepEqual(c.inbound, { address: '0.0.0.0', port: 8443, appPort: 9000, mode: 'http' });
    assert.equal(c.outbound, undefined);
    assert.deepEqual([...c.resolve], [['a.svc', '127.0.0.1'], ['b.svc', '::1']]);
    assert.deepEqual(c.limits, DEFAULT_LIMITS);
    assert.deepEqual(c.requests, { maxBodyBytes: 4 * 1024 * 1024 });
  });

  const refused: [string, string[], RegExp][] = [
    ['an unknown flag', ['--outbound-port', '1', '--allow-all'], /Unknown option '--allow-all'/],
    ['nothing to do', [], /nothing to do/],
    ['an inbound port without an app port', ['--inbound-port', '1'], /--inbound-port and --app-port go together/],
    ['a bad mode', ['--outbound-port', '1', '--mode', 'grpc'], /--mode must be http or tcp, got "grpc"/],
    ['a bad port', ['--outbound-port', '70000'], /--outbound-port must be a port number/],
    ['a bad duration', ['--outbound-port', '1', '--header-timeout', '10'], /--header-timeout must be a duration/],
    ['a zero duration', ['--outbound-port', '1', '--idle-timeout', '0'], /--idle-timeout must be longer than 0/],
    ['a bad count', ['--outbound-port', '1', '--max-connections', '0'], /--max-connections must be a positive whole number/],
    ['a pin to a name', ['--outbound-port', '1', '--resolve', 'a.svc=b.svc'], /--resolve must be HOST=IP/],
    ['an empty audit log', ['--outbound-port', '1', '--audit-log='], /--audit-log must be -, off or a file path, got ""/],
    ['a bad metrics port', ['--outbound-port', '1', '--metrics-port', 'http'], /--metrics-port must be a port number/],
    ['a metrics address that is not an IP', ['--outbound-port', '1', '--metrics-port', '1', '--metrics-address', 'pod'], /--metrics-address must be an IP address/],
    ['a metrics address without a port', ['--outbound-port', '1', '--metrics-address', '127.0.0.1'], /--metrics-address needs --metrics-port/],
    ['an inbound address that is not an IP', ['--inbound-port', '1', '--app-port', '2', '--inbound-address', 'localhost'], /--inbound-address must be an IP address/],
  ];
  for (const [name, argv, message] of refused) it(`refuses ${name}, by name`, () => assert.throws(() => proxyConfig(argv, {}), message));
});
