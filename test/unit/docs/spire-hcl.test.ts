// docs/federation.md ("With SPIRE") shows the SPIRE server configuration that
// test/integration/spire-interop.test.ts runs; this keeps the two the same text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spireServerHcl } from '../../support/spire.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;

test('the SPIRE HCL in docs/federation.md is the one the interop test runs, placeholders for ports and paths', () => {
  const page = readFileSync(`${ROOT}docs/federation.md`, 'utf8');
  const shown = /## With SPIRE[\s\S]*?```hcl\n([\s\S]*?)```/.exec(page)?.[1];
  assert.ok(shown, 'docs/federation.md has an hcl block under "With SPIRE"');
  const run = spireServerHcl({
    trustDomain: 'spire.test', dir: '<tmp>', serverPort: '<free port>', bundleEndpointPort: '<free port>',
    federatesWith: { trustDomain: 'cluster-a.test', bundleEndpointURL: 'https://127.0.0.1:<our port>/bundles/cluster-a.test', endpointSPIFFEID: 'spiffe://cluster-a.test/agent-identity-operator/bundle-endpoint' },
  });
  assert.equal(shown, run);
});
