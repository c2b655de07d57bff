import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMachineUser, createOrg, createRole, createUser, login, loginAdmin, type OrgFixture, type Session } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

const MIN = 60_000;

describe.each(TEST_DIALECTS)('authentication (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let admin: Session;
  beforeAll(async () => {
    t = await createTestServer({ dialect, env: { ROCKIT_LOGIN_MAX_FAILURES: '3', ROCKIT_LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', ROCKIT_LOGIN_MAX_FAILURES_PER_ADDRESS: '4', ROCKIT_LOGIN_WINDOW_SECONDS: '60' } });
    org = await createOrg(t);
  });
  // Tests move the clock: a fresh admin token for each.
  beforeEach(async () => {
    admin = await loginAdmin(t, org);
  });
  afterAll(() => t?.close());

  it('login answers a session, the user (no hash) and the permissions', async () => {
    const r = await t.req('POST', '/be/v1/login', { body: { orgName: org.name, username: 'admin', password: org.adminPassword } });
    expect(r.statusCode).toBe(200);
    const j = r.json();
    expect(j.status).toBe('success');
    expect(j.session.expires).toBe(Math.floor((t.clock.now() + 24 * 3600 * 1000) / 1000));
    expect(j.user).toMatchObject({ username: 'admin', type: 'user', roles: ['Administrators'], disabled: false });
    expect(j.permissions).toMatchObject({ apps: 15, beUsers: 15, consumption: 2, tasks: 31, trainings: 6 });
    expect(Object.keys(j.permissions)).toHaveLength(12);
    expect(r.body).not.toMatch(/scrypt|password_hash|passwordHash/);
  });

  it('login failures: the same invalid-credentials for unknown org, unknown user and wrong password', async () => {
    for (const body of [
      { orgName: 'no_such_org', username: 'admin', password: 'whatever1' },
      { orgName: org.name, username: 'nobody', password: 'whatever1' },
      { orgName: org.name, username: 'admin', password: 'wrong-password' },
    ]) {
      const r = await t.req('POST', '/be/v1/login', { body, remoteAddress: `10.1.0.${body.username.length}` });
      expect(r.statusCode).toBe(401);
      expect(r.json()).toEqual({ status: 'error', error: 'invalid-credentials', message: expect.any(String) });
    }
    const missing = await t.req('POST', '/be/v1/login', { body: { orgName: org.name, username: 'admin' } });
    expect(missing.json()).toMatchObject({ error: 'missing-param', param: 'password' });
  });

  it('throttles failed logins per (org, username) from any address (ROCKIT_LOGIN_MAX_FAILURES_PER_ACCOUNT) with 429 rate-limited and Retry-After', async () => {
    const o = await createOrg(t);
    const bad = { orgName: o.name, username: 'admin', password: 'wrong-password' };
    for (let i = 0; i < 3; i++) expect((await t.req('POST', '/be/v1/login', { body: bad, remoteAddress: `10.2.0.${i}` })).statusCode).toBe(401);
    const r = await t.req('POST', '/be/v1/login', { body: { ...bad, password: o.adminPassword } });
    expect(r.statusCode).toBe(429);
    expect(r.json().error).toBe('rate-limited');
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    t.clock.advance(61_000);
    const ok = await t.req('POST', '/be/v1/login', { body: { ...bad, password: o.adminPassword } });
    expect(ok.statusCode).toBe(200);
  });

  it('throttles failed logins per client address too, whatever the username', async () => {
    const o = await createOrg(t);
    const from = (remoteAddress: string, username: string, password = 'wrong-password') =>
      t.req('POST', '/be/v1/login', { body: { orgName: o.name, username, password }, remoteAddress });
    // ROCKIT_LOGIN_MAX_FAILURES_PER_ADDRESS=4 for this server.
    for (let i = 0; i < 4; i++) expect((await from('10.0.0.9', `guess_${i}`)).statusCode).toBe(401);
    const blocked = await from('10.0.0.9', 'admin', o.adminPassword);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.headers['retry-after']).toBeDefined();
    expect((await from('10.0.0.10', 'admin', o.adminPassword)).statusCode).toBe(200);
  });

  it.skipIf(dialect !== 'pg')('counts failures for every API node of a cluster (a second server on the same database)', async () => {
    const o = await createOrg(t);
    const db = t.server.config.database;
    const t2 = await createTestServer({
      dialect, clock: t.clock, sharesDatabase: true,
      env: { ROCKIT_LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', ROCKIT_LOGIN_WINDOW_SECONDS: '60', ...(db.kind === 'pg' && db.schema ? { ROCKIT_DATABASE_SCHEMA: db.schema } : {}) },
    });
    try {
      const bad = { orgName: o.name, username: 'admin', password: 'wrong-password' };
      // Failures spread over both nodes add up: 2 on one, 1 on the other.
      for (const [node, i] of [[t, 1], [t2, 2], [t, 3]] as const) {
        expect((await node.req('POST', '/be/v1/login', { body: bad, remoteAddress: `10.3.0.${i}` })).statusCode).toBe(401);
      }
      const blocked = await t2.req('POST', '/be/v1/login', { body: { ...bad, password: o.adminPassword } });
      expect(blocked.statusCode).toBe(429);
      t.clock.advance(61_000);
      expect((await t2.req('POST', '/be/v1/login', { body: { ...bad, password: o.adminPassword } })).statusCode).toBe(200);
    } finally {
      await t2.close();
    }
  });

  it('auth token via x-rockit-beauth-token or Bearer; session token only on auth/logout', async () => {
    expect((await t.req('GET', '/be/v1/roles', { headers: admin.headers })).statusCode).toBe(200);
    expect((await t.req('GET', '/be/v1/roles', { headers: { authorization: `Bearer ${admin.authToken}` } })).statusCode).toBe(200);
    const s = await t.req('GET', '/be/v1/roles', { headers: { 'x-rockit-besession-token': admin.sessionToken } });
    expect(s.statusCode).toBe(401);
    expect(s.json().error).toBe('token-invalid');
    const asSession = await t.req('POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': admin.authToken } });
    expect(asSession.json().error).toBe('token-invalid');
    const none = await t.req('GET', '/be/v1/roles');
    expect(none.statusCode).toBe(401);
    expect(none.json().error).toBe('token-missing');
    const garbage = await t.req('GET', '/be/v1/roles', { headers: { 'x-rockit-beauth-token': 'garbage' } });
    expect(garbage.json().error).toBe('token-invalid');
    const basic = await t.req('GET', '/be/v1/roles', { headers: { authorization: 'Basic abc' } });
    expect(basic.json().error).toBe('token-invalid');
    const noHeader = await t.req('POST', '/be/v1/auth');
    expect(noHeader.statusCode).toBe(400);
    expect(noHeader.json()).toMatchObject({ error: 'missing-param', param: 'x-rockit-besession-token' });
  });

  it('conflicting-credentials: token with API key, partial trio, two auth tokens', async () => {
    const m = await createMachineUser(t, org, admin.headers, ['Administrators']);
    const cases: Array<Record<string, string>> = [
      { ...admin.headers, ...m.headers },
      { authorization: `Bearer ${admin.authToken}`, ...m.headers },
      { 'x-rockit-orgname': org.name },
      { 'x-rockit-orgname': org.name, 'x-rockit-username': m.username },
      { 'x-rockit-api-key': m.key },
      { ...admin.headers, authorization: `Bearer ${admin.authToken}` },
    ];
    for (const headers of cases) {
      const r = await t.req('GET', '/be/v1/roles', { headers });
      expect(r.statusCode, JSON.stringify(Object.keys(headers))).toBe(400);
      expect(r.json().error).toBe('conflicting-credentials');
    }
    const onAuth = await t.req('POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': admin.sessionToken, ...m.headers } });
    expect(onAuth.json().error).toBe('conflicting-credentials');
    const keyOnAuth = await t.req('POST', '/be/v1/auth', { headers: m.headers });
    expect(keyOnAuth.statusCode).toBe(401);
    expect((await t.req('GET', '/be/v1/roles', { headers: m.headers })).statusCode).toBe(200);
  });

  it('auth tokens expire after 5 minutes (token-expired); sessions after 24 h', async () => {
    const s = await loginAdmin(t, org);
    t.clock.advance(5 * MIN - 1000);
    expect((await t.req('GET', '/be/v1/roles', { headers: s.headers })).statusCode).toBe(200);
    t.clock.advance(2000);
    const r = await t.req('GET', '/be/v1/roles', { headers: s.headers });
    expect(r.statusCode).toBe(401);
    expect(r.json().error).toBe('token-expired');
    const again = await t.req('POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': s.sessionToken } });
    expect(again.statusCode).toBe(200);
    t.clock.advance(24 * 60 * MIN);
    const late = await t.req('POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': s.sessionToken } });
    expect(late.statusCode).toBe(401);
    expect(late.json().error).toBe('token-expired');
  });

  it('an auth token never outlives its session', async () => {
    const s = await loginAdmin(t, org);
    t.clock.advance(24 * 60 * MIN - 60_000);
    const a = await t.req('POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': s.sessionToken } });
    const sessionExpires = Math.floor((t.clock.now() + 60_000) / 1000);
    expect(a.json().auth.expires).toBe(sessionExpires);
  });

  it('logout revokes the session and every auth token derived from it', async () => {
    const s = await loginAdmin(t, org);
    const second = (await t.req('POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': s.sessionToken } })).json().auth.token;
    const out = await t.req('POST', '/be/v1/logout', { headers: { 'x-rockit-besession-token': s.sessionToken } });
    expect(out.statusCode).toBe(200);
    for (const token of [s.authToken, second]) {
      const r = await t.req('GET', '/be/v1/roles', { headers: { 'x-rockit-beauth-token': token } });
      expect(r.statusCode).toBe(401);
      expect(r.json().error).toBe('token-invalid');
    }
    expect((await t.req('POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': s.sessionToken } })).json().error).toBe('token-invalid');
    expect((await t.req('POST', '/be/v1/logout', { headers: { 'x-rockit-besession-token': s.sessionToken } })).json().error).toBe('token-invalid');
  });

  it('API keys: machine users only, several at once (rotation), revocation at once, never on login', async () => {
    const m = await createMachineUser(t, org, admin.headers, ['Administrators']);
    const k2 = await t.req('POST', '/be/v1/apikeys', { headers: admin.headers, body: { username: m.username } });
    expect(k2.statusCode).toBe(201);
    const key2 = k2.json().apiKey;
    expect(key2).toEqual({ id: expect.stringMatching(/^k_/), key: expect.any(String), created: expect.any(Number) });
    const h2 = { ...m.headers, 'x-rockit-api-key': key2.key };
    expect((await t.req('GET', '/be/v1/roles', { headers: m.headers })).statusCode).toBe(200);
    expect((await t.req('GET', '/be/v1/roles', { headers: h2 })).statusCode).toBe(200);
    const del = await t.req('DELETE', `/be/v1/apikeys/${m.keyId}`, { headers: admin.headers });
    expect(del.statusCode).toBe(200);
    expect((await t.req('GET', '/be/v1/roles', { headers: m.headers })).json().error).toBe('token-invalid');
    expect((await t.req('GET', '/be/v1/roles', { headers: h2 })).statusCode).toBe(200);
    expect((await t.req('DELETE', `/be/v1/apikeys/${m.keyId}`, { headers: admin.headers })).statusCode).toBe(404);
    const wrongUser = await t.req('GET', '/be/v1/roles', { headers: { ...h2, 'x-rockit-username': 'admin' } });
    expect(wrongUser.json().error).toBe('token-invalid');
    const forUser = await t.req('POST', '/be/v1/apikeys', { headers: admin.headers, body: { username: 'admin' } });
    expect(forUser.json()).toMatchObject({ error: 'invalid-param', param: 'username' });
    const unknown = await t.req('POST', '/be/v1/apikeys', { headers: admin.headers, body: { username: 'ghost_user' } });
    expect(unknown.statusCode).toBe(404);
    const l = await t.req('POST', '/be/v1/login', { body: { orgName: org.name, username: m.username, password: key2.key } });
    expect(l.json().error).toBe('invalid-credentials');
  });

  it('disabled accounts get 403 account-disabled on login and on live tokens; deletion revokes at once', async () => {
    const role = await createRole(t, admin.headers, { roles: 2 });
    const u = await createUser(t, org, admin.headers, [role]);
    const m = await createMachineUser(t, org, admin.headers, [role]);
    for (const name of [u.username, m.username]) {
      expect((await t.req('PATCH', '/be/v1/users', { headers: admin.headers, body: { username: name, disabled: true } })).statusCode).toBe(200);
    }
    expect((await t.req('GET', '/be/v1/roles', { headers: u.headers })).json().error).toBe('account-disabled');
    expect((await t.req('GET', '/be/v1/roles', { headers: m.headers })).json().error).toBe('account-disabled');
    const l = await t.req('POST', '/be/v1/login', { body: { orgName: org.name, username: u.username, password: u.password } });
    expect(l.statusCode).toBe(403);
    expect(l.json().error).toBe('account-disabled');
    expect((await t.req('POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': u.sessionToken } })).json().error).toBe('account-disabled');
    await t.req('PATCH', '/be/v1/users', { headers: admin.headers, body: { username: u.username, disabled: false } });
    expect((await t.req('GET', '/be/v1/roles', { headers: u.headers })).statusCode).toBe(200);
    for (const name of [u.username, m.username]) {
      expect((await t.req('DELETE', `/be/v1/users/${name}`, { headers: admin.headers })).statusCode).toBe(200);
    }
    expect((await t.req('GET', '/be/v1/roles', { headers: u.headers })).json().error).toBe('token-invalid');
    expect((await t.req('GET', '/be/v1/roles', { headers: m.headers })).json().error).toBe('token-invalid');
    expect((await t.req('POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': u.sessionToken } })).json().error).toBe('token-invalid');
  });

  it('own password change: oldPW + newPW; wrong oldPW is invalid-param', async () => {
    const u = await createUser(t, org, admin.headers, []);
    const wrong = await t.req('PATCH', '/be/v1/users', { headers: u.headers, body: { oldPW: 'not-it-at-all', newPW: 'brand-new-pass' } });
    expect(wrong.json()).toMatchObject({ error: 'invalid-param', param: 'oldPW' });
    const short = await t.req('PATCH', '/be/v1/users', { headers: u.headers, body: { oldPW: u.password, newPW: 'short' } });
    expect(short.json()).toMatchObject({ error: 'invalid-param', param: 'newPW' });
    const onlyNew = await t.req('PATCH', '/be/v1/users', { headers: u.headers, body: { newPW: 'brand-new-pass' } });
    expect(onlyNew.json()).toMatchObject({ error: 'missing-param', param: 'oldPW' });
    const ok = await t.req('PATCH', '/be/v1/users', { headers: u.headers, body: { oldPW: u.password, newPW: 'brand-new-pass' } });
    expect(ok.statusCode).toBe(200);
    await login(t, org.name, u.username, 'brand-new-pass');
    const reset = await t.req('PATCH', '/be/v1/users', { headers: admin.headers, body: { username: u.username, resetCreds: 'admin-set-pass' } });
    expect(reset.statusCode).toBe(200);
    await login(t, org.name, u.username, 'admin-set-pass');
  });
});
