import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMachineUser, createOrg, createRole, createUser, loginAdmin, uniqueName, type OrgFixture, type Session } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

/**
 * The no-escalation rule of spec §2.3, as a matrix: handing out roles (create, patch), role values
 * (create, patch), API keys (POST /be/v1/apikeys, machine-user creation) and acting on another user
 * (reset, disable, delete, change roles, revoke keys) all need the caller to cover the grant.
 */
describe.each(TEST_DIALECTS)('no escalation (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let admin: Session;
  const A = () => admin.headers;
  const req = (method: string, url: string, headers: Record<string, string>, body?: unknown) => t.req(method, url, { headers, body });
  const person = (roles: string[], username = uniqueName('p')) => ({ username, email: `${username}@example.com`, firstname: 'F', surname: 'S', roles });
  const forbidden = (r: { statusCode: number; body: string; json(): any }, permission: string) => {
    expect(r.statusCode, r.body).toBe(403);
    expect(r.json()).toMatchObject({ status: 'error', error: 'forbidden', permission });
  };
  /** A user account and a machine user, both holding one role with `permissions`. */
  async function callers(permissions: Record<string, number>) {
    const role = await createRole(t, A(), permissions);
    return { role, token: await createUser(t, org, A(), [role]), key: await createMachineUser(t, org, A(), [role]) };
  }

  beforeAll(async () => {
    t = await createTestServer({ dialect });
    org = await createOrg(t);
    admin = await loginAdmin(t, org);
  });
  afterAll(() => t?.close());

  it('POST /be/v1/users: only roles the caller covers (users.create alone suffices for them)', async () => {
    const c = await callers({ beUsers: 3 });
    const subset = await createRole(t, A(), { beUsers: 2 });
    const more = await createRole(t, A(), { beUsers: 7 });
    for (const h of [c.token.headers, c.key.headers]) {
      forbidden(await req('POST', '/be/v1/users', h, person(['Administrators'])), 'apps.create');
      forbidden(await req('POST', '/be/v1/users', h, person([more])), 'users.update');
      forbidden(await req('POST', '/be/v1/users', h, person([subset, more])), 'users.update');
      const machine = await req('POST', '/be/v1/users', h, { username: uniqueName('m'), label: 'CI', roles: ['Administrators'] });
      forbidden(machine, 'apps.create');
      expect(machine.json().apiKey).toBeUndefined();
      expect((await req('POST', '/be/v1/users', h, person([]))).statusCode).toBe(201);
      expect((await req('POST', '/be/v1/users', h, person([subset]))).statusCode).toBe(201);
      expect((await req('POST', '/be/v1/users', h, person([c.role, subset]))).statusCode).toBe(201);
      expect((await req('POST', '/be/v1/users', h, { username: uniqueName('m'), label: 'CI', roles: [c.role] })).statusCode).toBe(201);
    }
    const r = await req('GET', `/be/v1/users?role=Administrators&limit=100`, A());
    expect(r.json().users.map((u: any) => u.username)).toEqual([org.adminUsername]);
  });

  it('POST /be/v1/apikeys and DELETE /be/v1/apikeys/{id}: only for machine users the caller covers', async () => {
    const c = await callers({ beUsers: 4 });
    const rootMachine = await createMachineUser(t, org, A(), ['Administrators']);
    const peer = await createMachineUser(t, org, A(), [c.role]);
    const bare = await createMachineUser(t, org, A(), []);
    for (const h of [c.token.headers, c.key.headers]) {
      const r = await req('POST', '/be/v1/apikeys', h, { username: rootMachine.username });
      forbidden(r, 'apps.create');
      expect(r.json().apiKey).toBeUndefined();
      forbidden(await req('DELETE', `/be/v1/apikeys/${rootMachine.keyId}`, h), 'apps.create');
      expect((await req('POST', '/be/v1/apikeys', h, { username: peer.username })).statusCode).toBe(201);
      expect((await req('POST', '/be/v1/apikeys', h, { username: bare.username })).statusCode).toBe(201);
    }
    expect((await req('DELETE', `/be/v1/apikeys/${bare.keyId}`, c.token.headers)).statusCode).toBeLessThan(300);
    // The administrator machine's key still works.
    expect((await req('GET', '/be/v1/apps', rootMachine.headers)).statusCode).toBe(200);
  });

  it("PATCH /be/v1/users: new roles covered, another user's permission covered (reset, disable, roles, fields)", async () => {
    const c = await callers({ beUsers: 15, roles: 15 });
    const second = await createUser(t, org, A(), ['Administrators']);
    const plain = await createUser(t, org, A(), []);
    const small = await createRole(t, A(), { beUsers: 2 });
    for (const h of [c.token.headers, c.key.headers]) {
      forbidden(await req('PATCH', '/be/v1/users', h, { username: org.adminUsername, resetCreds: 'attacker-chosen-pw' }), 'apps.create');
      forbidden(await req('PATCH', '/be/v1/users', h, { username: second.username, disabled: true }), 'apps.create');
      forbidden(await req('PATCH', '/be/v1/users', h, { username: second.username, roles: [] }), 'apps.create');
      forbidden(await req('PATCH', '/be/v1/users', h, { username: second.username, email: 'attacker@example.com' }), 'apps.create');
      forbidden(await req('PATCH', '/be/v1/users', h, { username: plain.username, roles: ['Administrators'] }), 'apps.create');
      expect((await req('PATCH', '/be/v1/users', h, { username: plain.username, roles: [small, c.role] })).statusCode).toBe(200);
      expect((await req('PATCH', '/be/v1/users', h, { username: plain.username, roles: [] })).statusCode).toBe(200);
    }
    expect((await req('PATCH', '/be/v1/users', c.token.headers, { username: plain.username, resetCreds: 'a-new-password-1' })).statusCode).toBe(200);
    // Raising oneself: refused; lowering oneself: allowed.
    forbidden(await req('PATCH', '/be/v1/users', c.token.headers, { roles: [c.role, 'Administrators'] }), 'apps.create');
    expect((await req('PATCH', '/be/v1/users', c.token.headers, { roles: [c.role, small] })).statusCode).toBe(200);
    // The untouched administrators still log in and hold their role.
    expect((await t.req('POST', '/be/v1/login', { body: { orgName: org.name, username: org.adminUsername, password: org.adminPassword } })).statusCode).toBe(200);
    expect((await req('GET', `/be/v1/users/${second.username}`, A())).json().user).toMatchObject({ roles: ['Administrators'], disabled: false });
    // An Administrator may grant and remove Administrators.
    expect((await req('PATCH', '/be/v1/users', A(), { username: plain.username, roles: ['Administrators'] })).statusCode).toBe(200);
    expect((await req('PATCH', '/be/v1/users', A(), { username: plain.username, roles: [] })).statusCode).toBe(200);
  });

  it('DELETE /be/v1/users/{username}: only users the caller covers', async () => {
    const c = await callers({ beUsers: 8 });
    const second = await createUser(t, org, A(), ['Administrators']);
    const richer = await createMachineUser(t, org, A(), [await createRole(t, A(), { beUsers: 8, apps: 2 })]);
    for (const h of [c.token.headers, c.key.headers]) {
      forbidden(await req('DELETE', `/be/v1/users/${second.username}`, h), 'apps.create');
      forbidden(await req('DELETE', `/be/v1/users/${richer.username}`, h), 'apps.read');
    }
    expect((await req('DELETE', `/be/v1/users/${(await createMachineUser(t, org, A(), [c.role])).username}`, c.token.headers)).statusCode).toBeLessThan(300);
    expect((await req('DELETE', `/be/v1/users/${(await createUser(t, org, A(), [])).username}`, c.key.headers)).statusCode).toBeLessThan(300);
  });

  it('POST and PATCH /be/v1/roles: the value, old and new, covered by the caller', async () => {
    const c = await callers({ roles: 15, apps: 2 });
    const wide = await createRole(t, A(), { apps: 15 });
    const narrow = await createRole(t, A(), { apps: 2 });
    for (const h of [c.token.headers, c.key.headers]) {
      forbidden(await req('POST', '/be/v1/roles', h, { name: uniqueName('r'), permissions: { apps: 3 } }), 'apps.create');
      forbidden(await req('POST', '/be/v1/roles', h, { name: uniqueName('r'), permissions: { tasks: 16 } }), 'trigger.create');
      expect((await req('POST', '/be/v1/roles', h, { name: uniqueName('r'), permissions: { apps: 2, roles: 15 } })).statusCode).toBe(201);
      // Its own role to everything.
      forbidden(await req('PATCH', '/be/v1/roles', h, { name: c.role, permissions: { apps: 15, beUsers: 15 } }), 'apps.create');
      // A role beyond the caller: neither raised, lowered nor relabelled.
      forbidden(await req('PATCH', '/be/v1/roles', h, { name: wide, permissions: { apps: 0 } }), 'apps.create');
      forbidden(await req('PATCH', '/be/v1/roles', h, { name: wide, label: 'mine now' }), 'apps.create');
      forbidden(await req('PATCH', '/be/v1/roles', h, { name: narrow, permissions: { apps: 6 } }), 'apps.update');
      expect((await req('PATCH', '/be/v1/roles', h, { name: narrow, label: 'fine', permissions: { apps: 2, roles: 2 } })).statusCode).toBe(200);
    }
    expect((await req('GET', `/be/v1/roles/${c.role}`, A())).json().role.permissions).toMatchObject({ apps: 2, beUsers: 0, roles: 15 });
    expect((await req('GET', `/be/v1/roles/${wide}`, A())).json().role).toMatchObject({ label: wide, permissions: { apps: 15 } });
  });

  it('a role change takes effect at once: a caller who lost bits can no longer hand them out', async () => {
    const c = await callers({ beUsers: 1, apps: 2 });
    const appsReader = await createRole(t, A(), { apps: 2 });
    expect((await req('POST', '/be/v1/users', c.token.headers, person([appsReader]))).statusCode).toBe(201);
    expect((await req('PATCH', '/be/v1/roles', A(), { name: c.role, permissions: { apps: 0 } })).statusCode).toBe(200);
    forbidden(await req('POST', '/be/v1/users', c.token.headers, person([appsReader])), 'apps.read');
  });
});
