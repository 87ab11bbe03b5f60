import { test } from 'node:test';
import assert from 'node:assert/strict';
import { impersonationHeaders } from '../../../src/kube/credentials.ts';

test('impersonation: one header per group and extra value; extra keys %-escaped as client-go does; nothing without as', () => {
  assert.deepEqual(impersonationHeaders({ impersonateUser: 'alice', impersonateUid: '42', impersonateGroups: ['a', 'b'], impersonateExtra: { 'example.com/scope': ['x', 'y'] } }), {
    'impersonate-user': 'alice', 'impersonate-uid': '42', 'impersonate-group': ['a', 'b'], 'impersonate-extra-example.com%2Fscope': ['x', 'y'],
  });
  assert.deepEqual(impersonationHeaders({ token: 't' }), {});
});
