import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMachineUser, createOrg, createRole, createUser, loginAdmin, type OrgFixture, type Session } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

/**
 * Issue 12: an authenticated list costs at most two SQL statements (one for the credential and the
 * caller's roles, one for the page with its total and role names), while revocation, disabling and
 * role changes still apply on the very next request (nothing about permissions is cached).
 */
describe.each(TEST_DIALECTS)('SQL statements per authenticated request (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let admin: Session;
  let counting = false;
  const statements: string[] = [];

  /** Runs one request and returns its response with the SQL statements it ran. */
  async function counted(method: string, url: string, headers: Record<string, string>) {
    statements.length = 0;
    counting = true;
    try {
      const r = await t.req(method, url, { headers });
      return { r, sql: [...statements] };
    } finally {
      counting = false;
    }
  }

  beforeAll(async () => {
    t = await createTestServer({
      dialect,
      // No worker: its polling would run statements of its own during the counted requests.
      env: { ROCKIT_NO_WORKER: 'true' },
      onQuery: (sql) => {
        if (counting) statements.push(sql);
      },
    });
    org = await createOrg(t);
    admin = await loginAdmin(t, org);
    const reader = await createRole(t, admin.headers, { beUsers: 2 });
    for (let i = 0; i < 12; i++) await createUser(t, org, admin.headers, [reader]);
  });
  afterAll(() => t?.close());

  it('GET /be/v1/users with an auth token: 2 statements, full page, total and roles', async () => {
    const { r, sql } = await counted('GET', '/be/v1/users?limit=10', admin.headers);
    expect(r.statusCode, r.body).toBe(200);
    const j = r.json();
    expect(j.total).toBe(13);
    expect(j.users).toHaveLength(10);
    expect(j.users[0]).toMatchObject({ username: 'admin', roles: ['Administrators'] });
    expect(j.users[1].roles).toHaveLength(1);
    expect(sql.length, sql.join('\n')).toBeLessThanOrEqual(2);
  });

  it('GET /be/v1/users with the API-key trio: 2 statements', async () => {
    const reader = await createRole(t, admin.headers, { beUsers: 2 });
    const bot = await createMachineUser(t, org, admin.headers, [reader]);
    const { r, sql } = await counted('GET', '/be/v1/users?limit=5', bot.headers);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().users).toHaveLength(5);
    expect(sql.length, sql.join('\n')).toBeLessThanOrEqual(2);
  });

  it('orders and filters as before in one statement; a page past the end still answers the total', async () => {
    const desc = await counted('GET', '/be/v1/users?limit=3&order=-username', admin.headers);
    expect(desc.r.statusCode, desc.r.body).toBe(200);
    const names = desc.r.json().users.map((u: { username: string }) => u.username);
    expect(names).toEqual([...names].sort().reverse());
    expect(desc.sql.length).toBeLessThanOrEqual(2);
    const total = desc.r.json().total as number;
    const past = await t.req('GET', '/be/v1/users?offset=500&limit=10', { headers: admin.headers });
    expect(past.statusCode).toBe(200);
    expect(past.json()).toMatchObject({ total, users: [] });
    const none = await t.req('GET', '/be/v1/users?username=no_such_user_at_all', { headers: admin.headers });
    expect(none.json()).toMatchObject({ total: 0, users: [] });
    // The same statement shape with other values (statements are compiled once per shape): each answers its own.
    const admins = await counted('GET', '/be/v1/users?username=ADM&type=user&role=Administrators', admin.headers);
    expect(admins.r.json()).toMatchObject({ total: 1, users: [{ username: 'admin' }] });
    expect(admins.sql.length).toBeLessThanOrEqual(2);
    const machines = await t.req('GET', '/be/v1/users?username=m_&type=machine&role=Administrators', { headers: admin.headers });
    expect(machines.json()).toMatchObject({ total: 0, users: [] });
    const wildcard = await t.req('GET', '/be/v1/users?username=%25', { headers: admin.headers });
    expect(wildcard.json()).toMatchObject({ total: 0 });
    const usernames = async (url: string) => (await t.req('GET', url, { headers: admin.headers })).json().users.map((u: { username: string }) => u.username);
    expect(await usernames('/be/v1/users?limit=2&offset=1')).toEqual((await usernames('/be/v1/users?limit=3')).slice(1, 3));
  });

  it('lists each user once with all its role names sorted, a user without roles with none, and the same fields as GET one', async () => {
    const zeta = await createRole(t, admin.headers, { apps: 2 }, 'zz_Zeta');
    const alpha = await createRole(t, admin.headers, { apps: 2 }, 'Aa_alpha');
    const beta = await createRole(t, admin.headers, { apps: 2 }, 'aa_beta');
    const many = await createUser(t, org, admin.headers, [zeta, beta, alpha], 'aaa_many_roles');
    await createUser(t, org, admin.headers, [], 'aaa_no_roles');
    const { r, sql } = await counted('GET', '/be/v1/users?username=aaa_&limit=10', admin.headers);
    expect(r.statusCode, r.body).toBe(200);
    expect(sql.length).toBeLessThanOrEqual(2);
    const listed = r.json();
    expect(listed.total).toBe(2);
    expect(listed.users.map((u: { username: string }) => u.username)).toEqual(['aaa_many_roles', 'aaa_no_roles']);
    expect(listed.users[0].roles).toEqual(['Aa_alpha', 'aa_beta', 'zz_Zeta']);
    expect(listed.users[1].roles).toEqual([]);
    const one = (await t.req('GET', `/be/v1/users/${many.username}`, { headers: admin.headers })).json().user;
    expect(listed.users[0]).toEqual(one);
    expect(Object.keys(listed.users[0]).sort()).toEqual(Object.keys(one).sort());
  });

  it('a role change, a disabled account, a revoked key and a logout take effect on the next request', async () => {
    const reader = await createRole(t, admin.headers, { beUsers: 2 });
    const other = await createRole(t, admin.headers, { apps: 2 });
    const u = await createUser(t, org, admin.headers, [reader]);
    expect((await t.req('GET', '/be/v1/users', { headers: u.headers })).statusCode).toBe(200);
    const patched = await t.req('PATCH', '/be/v1/users', { headers: admin.headers, body: { username: u.username, roles: [other] } });
    expect(patched.statusCode, patched.body).toBe(200);
    expect((await t.req('GET', '/be/v1/users', { headers: u.headers })).json().error).toBe('forbidden');

    const bot = await createMachineUser(t, org, admin.headers, [reader]);
    expect((await t.req('GET', '/be/v1/users', { headers: bot.headers })).statusCode).toBe(200);
    const revoked = await t.req('DELETE', `/be/v1/apikeys/${bot.keyId}`, { headers: admin.headers });
    expect(revoked.statusCode, revoked.body).toBeLessThan(300);
    expect((await t.req('GET', '/be/v1/users', { headers: bot.headers })).json().error).toBe('token-invalid');

    const v = await createUser(t, org, admin.headers, [reader]);
    expect((await t.req('PATCH', '/be/v1/users', { headers: admin.headers, body: { username: v.username, disabled: true } })).statusCode).toBe(200);
    expect((await t.req('GET', '/be/v1/users', { headers: v.headers })).json().error).toBe('account-disabled');

    const w = await createUser(t, org, admin.headers, [reader]);
    await t.req('POST', '/be/v1/logout', { headers: { 'x-rockit-besession-token': w.sessionToken } });
    expect((await t.req('GET', '/be/v1/users', { headers: w.headers })).json().error).toBe('token-invalid');
  });
});
