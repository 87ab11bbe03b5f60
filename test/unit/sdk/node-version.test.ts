import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { MIN_NODE_VERSION, unsupportedNodeVersion } from '../../../src/sdk/node-version.ts';

describe('unsupportedNodeVersion', () => {
  it('names the minimum and the running version for Node 20 and an early Node 22', () => {
    assert.equal(unsupportedNodeVersion('20.20.2'), 'agent-identity-operator/sdk needs Node >= 22.19; this is v20.20.2');
    assert.equal(unsupportedNodeVersion('v22.18.0'), 'agent-identity-operator/sdk needs Node >= 22.19; this is v22.18.0');
  });

  it('accepts the minimum and anything later, by number rather than by text', () => {
    for (const v of ['22.19.0', 'v22.19.1', '22.100.0', '23.0.0', '24.9.0', '100.0.0']) assert.equal(unsupportedNodeVersion(v), undefined, v);
  });

  it("is the minimum package.json's engines declares", async () => {
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } };
    assert.equal(pkg.engines.node, `>=${MIN_NODE_VERSION.replace(/\.0$/, '')}`);
  });
});
