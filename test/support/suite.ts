// The setup most integration files share: a control plane, the API helpers,
// the default TrustDomain (unless told otherwise) and a running operator.
import { startTestEnv, type TestEnv } from './env.ts';
import { runOperator } from './operator.ts';
import { api } from './objects.ts';
import type { Operator } from '../../src/operator.ts';
import type { Config } from '../../src/config.ts';
import type { TrustDomainSpec } from '../../src/api/types.ts';

export interface Suite { env: TestEnv; op: Operator; a: ReturnType<typeof api> }

export const DEFAULT_TRUST_DOMAIN: TrustDomainSpec = { trustDomain: 'cluster.local', ca: { selfSigned: {} } };

export async function setUp(opts: { operator?: Partial<Config>; trustDomain?: TrustDomainSpec | null } = {}): Promise<Suite> {
  const env = await startTestEnv();
  const a = api(env.kc);
  const td = opts.trustDomain === undefined ? DEFAULT_TRUST_DOMAIN : opts.trustDomain;
  if (td) await a.createTrustDomain('default', td);
  const op = await runOperator(env.kc, opts.operator);
  return { env, op, a };
}

export async function tearDown(s: Partial<Suite>): Promise<void> {
  await s.op?.stop();
  await s.env?.stop();
}
