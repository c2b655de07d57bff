import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMachineUser, createOrg, createRole, createUser, loginAdmin, type OrgFixture, type Session } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

describe.each(TEST_DIALECTS)('roles and users (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let admin: Session;
  beforeAll(async () => {
    t = await createTestServer({ dialect });
    org = await createOrg(t);
  });
  beforeEach(async () => {
    admin = await loginAdmin(t, org);
  });
  afterAll(() => t?.close());

  const req = (method: string, url: string, body?: unknown, headers = admin.headers) => t.req(method, url, { headers, body });

  it('creates roles (left-out resources read 0) and refuses bits a resource lacks', async () => {
    const r = await req('POST', '/be/v1/roles', { name: 'Viewers', label: 'Read only', permissions: { apps: 2, tasks: 2 } });
    expect(r.statusCode).toBe(201);
    const role = r.json().role;
    expect(role).toMatchObject({ name: 'Viewers', label: 'Read only', users: 0 });
    expect(role.permissions).toEqual({
      apps: 2, beUsers: 0, bundles: 0, consumption: 0, dependencies: 0, deployments: 0, keys: 0, roles: 0, sources: 0,
      subscriptions: 0, tasks: 2, trainings: 0,
    });
    for (const [permissions, param] of [
      [{ consumption: 1 }, 'permissions.consumption'],
      [{ trainings: 1 }, 'permissions.trainings'],
      [{ apps: 16 }, 'permissions.apps'],
      [{ tasks: 32 }, 'permissions.tasks'],
      [{ apps: -1 }, 'permissions.apps'],
      [{ apps: '2' }, 'permissions.apps'],
      [{ nope: 1 }, 'permissions.nope'],
    ] as const) {
      const bad = await req('POST', '/be/v1/roles', { name: 'Bad_role', permissions });
      expect(bad.statusCode, JSON.stringify(permissions)).toBe(400);
      expect(bad.json()).toMatchObject({ error: 'invalid-param', param });
    }
    expect((await req('POST', '/be/v1/roles', { name: 'Viewers', permissions: {} })).json().error).toBe('already-exists');
    expect((await req('POST', '/be/v1/roles', { name: 'Administrators', permissions: {} })).json().error).toBe('already-exists');
    expect((await req('POST', '/be/v1/roles', { name: 'NoPerms' })).json()).toMatchObject({ error: 'missing-param', param: 'permissions' });
  });

  it('patches roles (missing resources keep their value); Administrators is immutable', async () => {
    await createRole(t, admin.headers, { apps: 3, keys: 2 }, 'Patchy');
    const p = await req('PATCH', '/be/v1/roles', { name: 'Patchy', label: 'New label', permissions: { apps: 15 } });
    expect(p.statusCode).toBe(200);
    expect(p.json().role).toMatchObject({ label: 'New label', permissions: { apps: 15, keys: 2 } });
    expect((await req('GET', '/be/v1/roles/Patchy')).json().role.permissions.apps).toBe(15);
    const a = await req('PATCH', '/be/v1/roles', { name: 'Administrators', label: 'x' });
    expect(a.statusCode).toBe(409);
    expect(a.json().error).toBe('in-use');
    expect((await req('DELETE', '/be/v1/roles/Administrators')).json().error).toBe('in-use');
    expect((await req('PATCH', '/be/v1/roles', { name: 'Ghost_role', label: 'x' })).statusCode).toBe(404);
    expect((await req('GET', '/be/v1/roles/Ghost_role')).statusCode).toBe(404);
  });

  it('deletes roles only when no user holds them; lists with user counts', async () => {
    const role = await createRole(t, admin.headers, { roles: 2 });
    const u = await createUser(t, org, admin.headers, [role]);
    const held = await req('DELETE', `/be/v1/roles/${role}`);
    expect(held.statusCode).toBe(409);
    expect(held.json().error).toBe('in-use');
    const list = await req('GET', `/be/v1/roles?name=${role}`);
    expect(list.json()).toMatchObject({ total: 1, roles: [{ name: role, users: 1 }] });
    await req('DELETE', `/be/v1/users/${u.username}`);
    expect((await req('DELETE', `/be/v1/roles/${role}`)).statusCode).toBe(200);
    expect((await req('GET', `/be/v1/roles/${role}`)).statusCode).toBe(404);
  });

  it('a role change takes effect on the next request', async () => {
    const role = await createRole(t, admin.headers, { roles: 2 });
    const u = await createUser(t, org, admin.headers, [role]);
    expect((await req('GET', '/be/v1/roles', undefined, u.headers)).statusCode).toBe(200);
    await req('PATCH', '/be/v1/roles', { name: role, permissions: { roles: 0 } });
    const r = await req('GET', '/be/v1/roles', undefined, u.headers);
    expect(r.statusCode).toBe(403);
    expect(r.json()).toMatchObject({ error: 'forbidden', permission: 'roles.read' });
  });

  it('creates user and machine accounts by the documented kinds', async () => {
    const u = await req('POST', '/be/v1/users', { username: 'alice', email: 'alice@example.com', firstname: 'Alice', surname: 'A', title: 'Dr', roles: [] });
    expect(u.statusCode).toBe(201);
    expect(u.json()).toEqual({
      status: 'success',
      user: {
        username: 'alice', type: 'user', email: 'alice@example.com', firstname: 'Alice', surname: 'A', title: 'Dr', roles: [],
        disabled: false, created: expect.any(Number), updated: expect.any(Number),
      },
      password: expect.any(String),
    });
    const m = await req('POST', '/be/v1/users', { username: 'robot', label: 'Build robot', roles: ['Administrators'] });
    expect(m.statusCode).toBe(201);
    expect(m.json()).toMatchObject({ user: { username: 'robot', type: 'machine', label: 'Build robot', roles: ['Administrators'] }, apiKey: { id: expect.any(String), key: expect.any(String) } });
    expect(m.json().password).toBeUndefined();
    const explicit = await req('POST', '/be/v1/users', { username: 'robot2', type: 'machine', label: 'x', roles: [] });
    expect(explicit.json().user.type).toBe('machine');
    const cases: Array<[unknown, string, string]> = [
      [{ username: 'bob', roles: [] }, 'missing-param', 'email'],
      [{ username: 'bob', email: 'bob@example.com', roles: [] }, 'missing-param', 'firstname'],
      [{ username: 'bob', type: 'machine', email: 'b@example.com', label: 'x', roles: [] }, 'invalid-param', 'email'],
      [{ username: 'bob', label: 'x', roles: ['NoSuchRole'] }, 'invalid-param', 'roles'],
      [{ username: 'bob', email: 'not-an-email', firstname: 'B', surname: 'B', roles: [] }, 'invalid-param', 'email'],
      [{ username: 'b', label: 'x', roles: [] }, 'invalid-param', 'username'],
      [{ username: 'bob', label: 'x' }, 'missing-param', 'roles'],
      [{ username: 'bob', label: 'x', roles: 'Administrators' }, 'invalid-param', 'roles'],
      [{ username: 'alice', label: 'x', roles: [] }, 'already-exists', 'username'],
    ];
    for (const [body, error, param] of cases) {
      const r = await req('POST', '/be/v1/users', body);
      expect(r.json(), JSON.stringify(body)).toMatchObject({ error, param });
    }
  });

  it('lists users with filters and gets one; never a hash', async () => {
    const role = await createRole(t, admin.headers, { apps: 2 });
    await createUser(t, org, admin.headers, [role], 'filter_me_1');
    await createMachineUser(t, org, admin.headers, [role], 'filter_me_2');
    const byName = await req('GET', '/be/v1/users?username=filter_me&limit=100');
    expect(byName.json().users.map((u: any) => u.username).sort()).toEqual(['filter_me_1', 'filter_me_2']);
    const byType = await req('GET', '/be/v1/users?username=filter_me&type=machine');
    expect(byType.json()).toMatchObject({ total: 1, users: [{ username: 'filter_me_2', type: 'machine' }] });
    const byRole = await req('GET', `/be/v1/users?role=${role}&order[]=-username`);
    expect(byRole.json().users.map((u: any) => u.username)).toEqual(['filter_me_2', 'filter_me_1']);
    const one = await req('GET', '/be/v1/users/filter_me_1');
    expect(one.json().user).toMatchObject({ username: 'filter_me_1', roles: [role], lastLogin: expect.any(Number) });
    expect(one.body).not.toMatch(/scrypt|hash/i);
    expect((await req('GET', '/be/v1/users/nobody_here')).statusCode).toBe(404);
    expect((await req('GET', '/be/v1/users?type=robot')).json()).toMatchObject({ error: 'invalid-param', param: 'type' });
  });

  it('patches users: self vs others, roles need roles.update, null removes title, resetCreds needs full beUsers', async () => {
    const usersUpdate = await createRole(t, admin.headers, { beUsers: 6 });
    const manager = await createUser(t, org, admin.headers, [usersUpdate]);
    const plain = await createUser(t, org, admin.headers, []);
    const self = await req('PATCH', '/be/v1/users', { firstname: 'Me', title: 'Prof' }, plain.headers);
    expect(self.statusCode).toBe(200);
    expect(self.json().user).toMatchObject({ username: plain.username, firstname: 'Me', title: 'Prof' });
    const cleared = await req('PATCH', '/be/v1/users', { title: null }, plain.headers);
    expect(cleared.json().user.title).toBeUndefined();
    const other = await req('PATCH', '/be/v1/users', { username: manager.username, firstname: 'X' }, plain.headers);
    expect(other.json()).toMatchObject({ error: 'forbidden', permission: 'users.update' });
    const byManager = await req('PATCH', '/be/v1/users', { username: plain.username, surname: 'Managed' }, manager.headers);
    expect(byManager.statusCode).toBe(200);
    const roles = await req('PATCH', '/be/v1/users', { username: plain.username, roles: [usersUpdate] }, manager.headers);
    expect(roles.json()).toMatchObject({ error: 'forbidden', permission: 'roles.update' });
    const reset = await req('PATCH', '/be/v1/users', { username: plain.username, resetCreds: 'new-password-1' }, manager.headers);
    expect(reset.json()).toMatchObject({ error: 'forbidden', permission: 'users.update' });
    const withRoles = await req('PATCH', '/be/v1/users', { username: plain.username, roles: [usersUpdate] });
    expect(withRoles.json().user.roles).toEqual([usersUpdate]);
    const typo = await req('PATCH', '/be/v1/users', { username: plain.username, emial: 'x@y.z' });
    expect(typo.json()).toMatchObject({ error: 'invalid-param', param: 'emial' });
    const ghost = await req('PATCH', '/be/v1/users', { username: 'ghost_user', firstname: 'x' });
    expect(ghost.statusCode).toBe(404);
  });

  it('the last Administrators member cannot be deleted, lose the role or be disabled', async () => {
    const o = await createOrg(t);
    const a = await loginAdmin(t, o);
    for (const [method, url, body] of [
      ['DELETE', '/be/v1/users/admin', undefined],
      ['PATCH', '/be/v1/users', { roles: [] }],
      ['PATCH', '/be/v1/users', { disabled: true }],
    ] as const) {
      const r = await t.req(method, url, { headers: a.headers, body });
      expect(r.statusCode, `${method} ${JSON.stringify(body)}`).toBe(409);
      expect(r.json().error).toBe('in-use');
    }
    const second = await createUser(t, o, a.headers, ['Administrators']);
    expect((await t.req('PATCH', '/be/v1/users', { headers: a.headers, body: { roles: [] } })).statusCode).toBe(200);
    const last = await t.req('DELETE', `/be/v1/users/${second.username}`, { headers: second.headers });
    expect(last.json().error).toBe('in-use');
  });

  it('two administrators dropping the role at the same moment: exactly one succeeds', async () => {
    const o = await createOrg(t);
    const a = await loginAdmin(t, o);
    const b = await createUser(t, o, a.headers, ['Administrators']);
    const results = await Promise.all([a, b].map((s) => t.req('PATCH', '/be/v1/users', { headers: s.headers, body: { roles: [] } })));
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409]);
    const holders = await t.req('GET', '/be/v1/roles/Administrators', { headers: results[0].statusCode === 200 ? b.headers : a.headers });
    expect(holders.json().role.users).toBe(1);
  });
});

describe.each(TEST_DIALECTS)('backend organizations (%s)', (dialect) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await createTestServer({ dialect, env: { ROCKIT_OPERATOR_ORG: 'operator' } });
  });
  afterAll(() => t?.close());

  it('operator-org Administrators create and delete orgs; others are refused without learning anything', async () => {
    const op = await createOrg(t, 'operator');
    const opAdmin = await loginAdmin(t, op);
    const created = await t.req('POST', '/be/v1/orgs', { headers: opAdmin.headers, body: { name: 'customer1', adminEmail: 'c@example.com' } });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ org: { name: 'customer1' }, admin: { username: 'admin', password: expect.any(String) } });
    const cust = { name: 'customer1', adminUsername: 'admin', adminPassword: created.json().admin.password };
    const custAdmin = await loginAdmin(t, cust);
    const refused = await t.req('POST', '/be/v1/orgs', { headers: custAdmin.headers, body: { name: 'customer2' } });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ error: 'forbidden', permission: 'orgs.create' });
    const opMember = await createUser(t, op, opAdmin.headers, []);
    expect((await t.req('POST', '/be/v1/orgs', { headers: opMember.headers, body: { name: 'customer3' } })).statusCode).toBe(403);
    const other = await createOrg(t, 'customer4');
    expect((await t.req('DELETE', '/be/v1/orgs/customer4', { headers: custAdmin.headers })).statusCode).toBe(404);
    expect((await t.req('DELETE', '/be/v1/orgs/no_such_org', { headers: custAdmin.headers })).statusCode).toBe(404);
    const custMember = await createUser(t, cust, custAdmin.headers, []);
    const notAdmin = await t.req('DELETE', '/be/v1/orgs/customer1', { headers: custMember.headers });
    expect(notAdmin.json()).toMatchObject({ error: 'forbidden', permission: 'orgs.delete' });
    expect((await t.req('DELETE', `/be/v1/orgs/${other.name}`, { headers: opAdmin.headers })).statusCode).toBe(200);
    expect((await t.req('DELETE', '/be/v1/orgs/customer1?prune=true', { headers: custAdmin.headers })).statusCode).toBe(200);
    expect((await t.req('GET', '/adm/v1/orgs/customer1', { headers: t.admin })).statusCode).toBe(404);
  });
});
