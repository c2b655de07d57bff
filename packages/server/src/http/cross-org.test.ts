import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOrgByName } from '../db/repositories/org.repository.js';
import { enqueueTask } from '../queue/tasks.queue.js';
import { createMachineUser, createOrg, createRole, createUser, loginAdmin } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

/** Every backend endpoint, tried with another organization's (fully privileged) credentials. */
describe.each(TEST_DIALECTS)('another organization never sees or touches an object (%s)', (dialect) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await createTestServer({ dialect, env: { ROCKIT_WORKER_CONCURRENCY: '1' } });
  });
  afterAll(() => t?.close());

  it('answers 404 (or the not-found equivalent) for every object of org A to the administrator of org B', async () => {
    const a = await createOrg(t, 'tenant_a');
    const b = await createOrg(t, 'tenant_b');
    const aAdmin = await loginAdmin(t, a);
    const bAdmin = await loginAdmin(t, b);
    const bMachine = await createMachineUser(t, b, bAdmin.headers, ['Administrators'], 'b_robot');
    const aRole = await createRole(t, aAdmin.headers, { apps: 3 }, 'a_only_role');
    const aUser = await createUser(t, a, aAdmin.headers, [aRole], 'a_only_user');
    const aMachine = await createMachineUser(t, a, aAdmin.headers, [aRole], 'a_only_robot');
    const orgA = await findOrgByName(t.server.db.db, 'tenant_a');
    const aTask = await enqueueTask(t.server.db.db, t.clock.now(), { type: 'noop_type', payload: {}, orgId: orgA!.id, appName: 'a_app', maxAttempts: 1 });

    const probes: Array<[string, string, unknown]> = [
      ['GET', `/be/v1/users/${aUser.username}`, undefined],
      ['PATCH', '/be/v1/users', { username: aUser.username, firstname: 'Hacked' }],
      ['PATCH', '/be/v1/users', { username: aUser.username, resetCreds: 'hacked-password' }],
      ['DELETE', `/be/v1/users/${aUser.username}`, undefined],
      ['GET', `/be/v1/roles/${aRole}`, undefined],
      ['PATCH', '/be/v1/roles', { name: aRole, permissions: { apps: 15 } }],
      ['DELETE', `/be/v1/roles/${aRole}`, undefined],
      ['POST', '/be/v1/apikeys', { username: aMachine.username }],
      ['DELETE', `/be/v1/apikeys/${aMachine.keyId}`, undefined],
      ['GET', `/be/v1/tasks/${aTask.name}`, undefined],
      ['DELETE', '/be/v1/orgs/tenant_a', undefined],
    ];
    for (const creds of [bAdmin.headers, bMachine.headers]) {
      for (const [method, url, body] of probes) {
        const r = await t.req(method, url, { headers: creds, body });
        expect(r.statusCode, `${method} ${url}`).toBe(404);
        expect(r.json().error).toBe('not-found');
      }
      // Naming A's role when creating a user in B: an unknown role, nothing more.
      const u = await t.req('POST', '/be/v1/users', { headers: creds, body: { username: 'x_user', label: 'x', roles: [aRole] } });
      expect(u.json()).toMatchObject({ error: 'invalid-param', param: 'roles' });
      // Lists only show B's objects.
      const users = (await t.req('GET', '/be/v1/users?limit=1000', { headers: creds })).json().users.map((x: any) => x.username);
      expect(users).not.toContain(aUser.username);
      expect(users).not.toContain(aMachine.username);
      const roles = (await t.req('GET', '/be/v1/roles?limit=1000', { headers: creds })).json().roles.map((x: any) => x.name);
      expect(roles).not.toContain(aRole);
      const tasks = (await t.req('GET', '/be/v1/tasks?limit=1000', { headers: creds })).json();
      expect(tasks.total).toBe(0);
    }
    // A's API key with B's org name, and A's user logging in under B: plain failures.
    const mixed = await t.req('GET', '/be/v1/roles', { headers: { ...aMachine.headers, 'x-rockit-orgname': 'tenant_b' } });
    expect(mixed.json().error).toBe('token-invalid');
    const l = await t.req('POST', '/be/v1/login', { body: { orgName: 'tenant_b', username: aUser.username, password: aUser.password } });
    expect(l.json().error).toBe('invalid-credentials');

    // Everything of A is intact.
    expect((await t.req('GET', `/be/v1/users/${aUser.username}`, { headers: aAdmin.headers })).json().user.firstname).toBe('Test');
    expect((await t.req('GET', `/be/v1/roles/${aRole}`, { headers: aAdmin.headers })).json().role.permissions.apps).toBe(3);
    expect((await t.req('GET', '/be/v1/roles', { headers: aMachine.headers })).statusCode).toBe(403);
    expect((await t.req('GET', `/be/v1/tasks/${aTask.name}`, { headers: aAdmin.headers })).json().task.appName).toBe('a_app');
    expect((await t.req('GET', '/be/v1/tasks?appName=A_AP', { headers: aAdmin.headers })).json().total).toBe(1);
    expect((await t.req('GET', '/adm/v1/orgs/tenant_a', { headers: t.admin })).statusCode).toBe(200);
  });

  it('keeps admin and backend credentials apart', async () => {
    const o = await createOrg(t);
    const s = await loginAdmin(t, o);
    expect((await t.req('POST', '/adm/v1/ping', { headers: s.headers })).json().error).toBe('token-missing');
    expect((await t.req('GET', '/adm/v1/orgs', { headers: { 'x-rockit-admin-token': s.authToken } })).json().error).toBe('token-invalid');
    expect((await t.req('GET', '/be/v1/roles', { headers: t.admin })).json().error).toBe('token-missing');
  });
});
