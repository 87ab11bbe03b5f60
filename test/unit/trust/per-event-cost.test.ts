// What one identity event costs the trust controller, counted on fakes at
// N=100 and N=10,000 identities (issue 20): whether it queues a TrustDomain
// pass at all, and what a pass reads. Counts, not timings.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentIdentity, ConfigMap } from '../../../src/api/types.ts';
import { IdentityNamespaces } from '../../../src/trust/identity-namespaces.ts';
import { trustReconciler } from '../../../src/trust/reconciler.ts';
import { policyConfigMapName } from '../../../src/api/defaults.ts';
import { FakeCluster, selfSignedTrustDomain } from './fakes.ts';
import { Emitter } from '../../support/emitter.ts';

const SIZES = [100, 10_000] as const;
const NAMESPACES = 10;


const identity = (name: string, namespace: string, extra: Partial<AgentIdentity['metadata']> = {}): AgentIdentity => ({
  apiVersion: 'agentidentity.dev/v1alpha1', kind: 'AgentIdentity',
  metadata: { name, namespace, uid: `uid-${namespace}-${name}`, ...extra }, spec: { serviceAccountName: name },
});

const population = (n: number) => Array.from({ length: n }, (_, i) => identity(`agent-${i}`, `ns-${i % NAMESPACES}`));

describe('trust per-event cost, N=100 vs N=10,000', () => {
  it('an identity event queues its TrustDomain only when a namespace gains its first identity or loses its last', () => {
    const costAt = (n: number) => {
      const identities = new Emitter<AgentIdentity>();
      const index = new IdentityNamespaces(identities);
      for (const i of population(n)) identities.emit({ type: 'change', obj: i });
      const queued: string[] = [];
      index.subscribe((e) => queued.push(e.obj));
      const measure = (event: () => void) => {
        queued.length = 0;
        event();
        return [...queued];
      };
      const lone = identity('lone', 'fresh');
      return {
        // Its namespace already has a bundle copy: nothing a pass publishes moves.
        sameNamespace: measure(() => identities.emit({ type: 'change', obj: identity(`agent-${n}`, 'ns-0') })),
        relabelled: measure(() => identities.emit({ type: 'change', obj: identity('agent-1', 'ns-1', { labels: { a: 'b' } }) })),
        firstInNamespace: measure(() => identities.emit({ type: 'change', obj: lone })),
        deleting: measure(() => identities.emit({ type: 'change', obj: identity('lone', 'fresh', { deletionTimestamp: '2030-01-01T00:00:00Z' }) })),
        deleted: measure(() => identities.emit({ type: 'delete', obj: lone })),
        namespaces: [...index.of('default')].sort(),
      };
    };
    const small = costAt(SIZES[0]);
    assert.deepEqual(small, {
      sameNamespace: [], relabelled: [], firstInNamespace: ['default'], deleting: ['default'], deleted: [],
      namespaces: Array.from({ length: NAMESPACES }, (_, k) => `ns-${k}`).sort(),
    });
    assert.deepEqual(costAt(SIZES[1]), small);
  });

  it('a TrustDomain pass reads namespaces, not identities, Secrets or every ConfigMap: the same reads at both sizes, and no write', async () => {
    const costAt = async (n: number) => {
      const c = new FakeCluster();
      c.addTrustDomain(selfSignedTrustDomain());
      const identities = new Emitter<AgentIdentity>();
      const index = new IdentityNamespaces(identities);
      for (const i of population(n)) {
        identities.emit({ type: 'change', obj: i });
        // Each identity's policy ConfigMap is in the same cache as the bundle copies.
        const cm: ConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: policyConfigMapName(i.metadata.name!), namespace: i.metadata.namespace }, data: {} };
        c.configMaps.set(`${i.metadata.namespace}/${cm.metadata.name}`, cm);
      }
      const reads: Record<string, number> = {};
      let objects = 0;
      const count = <T>(what: string, result: T): T => {
        reads[what] = (reads[what] ?? 0) + 1;
        objects += Array.isArray(result) ? result.length : result === undefined ? 0 : 1;
        return result;
      };
      const base = c.deps();
      const reconcile = trustReconciler({
        ...base,
        identityNamespaces: { of: (td) => count('identityNamespaces.of', [...index.of(td)]) },
        namespaces: { list: () => count('namespaces.list', base.namespaces.list()) },
        configMaps: { get: (name, ns) => count('configMaps.get', base.configMaps.get(name, ns)), list: (ns) => count('configMaps.list', base.configMaps.list(ns)) },
        secretList: { list: () => count('secretList.list', base.secretList.list()) },
      });
      // The first passes make the CA and publish the bundle copies; the one measured is the pass an identity event queues.
      for (let i = 0; i < 3; i++) await reconcile('default');
      c.writes = [];
      for (const k of Object.keys(reads)) delete reads[k];
      objects = 0;
      await reconcile('default');
      return { writes: c.writes, reads, objects };
    };
    const small = await costAt(SIZES[0]);
    assert.deepEqual(small.writes, []);
    assert.equal(small.reads['secretList.list'], undefined, 'no rotation: identity Secrets are not scanned');
    assert.deepEqual(await costAt(SIZES[1]), small);
  });
});
