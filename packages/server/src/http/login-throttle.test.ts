import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMachineUser, createOrg, loginAdmin, type OrgFixture } from '../test-support/factories.js';
import { ADMIN_TOKEN, createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

/**
 * Issue 8 item 4 on each dialect: attempts are counted before the password check (parallel attempts
 * cannot race past the limit), per (account, address) first, per account only at a higher bound, and
 * admin-token / API-key failures per address.
 */
describe.each(TEST_DIALECTS)('login and credential throttle (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  beforeAll(async () => {
    t = await createTestServer({
      dialect,
      env: {
        ROCKIT_LOGIN_MAX_FAILURES: '3', ROCKIT_LOGIN_MAX_FAILURES_PER_ACCOUNT: '8', ROCKIT_LOGIN_MAX_FAILURES_PER_ADDRESS: '6',
        ROCKIT_AUTH_MAX_FAILURES_PER_ADDRESS: '3', ROCKIT_LOGIN_WINDOW_SECONDS: '60',
      },
    });
  });
  afterAll(() => t?.close());

  const loginFrom = (remoteAddress: string, username: string, password: string, o = org) =>
    t.req('POST', '/be/v1/login', { body: { orgName: o.name, username, password }, remoteAddress });
  const limited = (r: { statusCode: number; headers: Record<string, unknown>; json(): any }) => {
    expect(r.statusCode).toBe(429);
    expect(r.json()).toMatchObject({ status: 'error', error: 'rate-limited' });
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
  };

  it('40 parallel wrong passwords from one address: at most 3 are checked; the real user logs in from elsewhere', async () => {
    org = await createOrg(t);
    const answers = await Promise.all(Array.from({ length: 40 }, () => loginFrom('10.9.0.1', org.adminUsername, 'wrong-password')));
    const codes = answers.map((a) => a.statusCode);
    expect(codes.filter((c) => c === 401).length).toBeLessThanOrEqual(3);
    expect(codes.filter((c) => c !== 401 && c !== 429)).toEqual([]);
    limited(answers.find((a) => a.statusCode === 429)!);
    limited(await loginFrom('10.9.0.1', org.adminUsername, org.adminPassword));
    expect((await loginFrom('10.9.0.2', org.adminUsername, org.adminPassword)).statusCode).toBe(200);
    t.clock.advance(61_000);
    expect((await loginFrom('10.9.0.1', org.adminUsername, org.adminPassword)).statusCode).toBe(200);
  });

  it('per account only at the higher bound: failures spread over addresses add up', async () => {
    const o = await createOrg(t);
    for (let i = 0; i < 8; i++) expect((await loginFrom(`10.8.0.${i}`, o.adminUsername, 'wrong-password', o)).statusCode).toBe(401);
    limited(await loginFrom('10.8.1.1', o.adminUsername, o.adminPassword, o));
    t.clock.advance(61_000);
    expect((await loginFrom('10.8.1.1', o.adminUsername, o.adminPassword, o)).statusCode).toBe(200);
  });

  it('a successful login is not counted against the address or the account', async () => {
    const o = await createOrg(t);
    const addr = '10.7.0.1';
    // Address bound 6: 2 failures, 3 successes, 3 failures (other names) are all answered.
    for (const name of ['nobody_a', 'nobody_b']) expect((await loginFrom(addr, name, 'wrong-password', o)).statusCode).toBe(401);
    for (let i = 0; i < 3; i++) expect((await loginFrom(addr, o.adminUsername, o.adminPassword, o)).statusCode).toBe(200);
    for (const name of ['nobody_c', 'nobody_d', 'nobody_e', 'nobody_f']) expect((await loginFrom(addr, name, 'wrong-password', o)).statusCode).toBe(401);
    limited(await loginFrom(addr, o.adminUsername, o.adminPassword, o));
    t.clock.advance(61_000);
  });

  it('admin-token guessing is throttled per address; the right token elsewhere still works', async () => {
    const ping = (remoteAddress: string, token: string) => t.req('POST', '/adm/v1/ping', { headers: { 'x-rockit-admin-token': token }, remoteAddress });
    for (let i = 0; i < 3; i++) expect((await ping('10.6.0.1', `wrong-${i}-${'x'.repeat(32)}`)).json().error).toBe('token-invalid');
    limited(await ping('10.6.0.1', `wrong-3-${'x'.repeat(32)}`));
    limited(await ping('10.6.0.1', ADMIN_TOKEN));
    expect((await ping('10.6.0.2', ADMIN_TOKEN)).statusCode).toBe(200);
    // Successes are free: many right tokens from one address never block it.
    for (let i = 0; i < 5; i++) expect((await ping('10.6.0.3', ADMIN_TOKEN)).statusCode).toBe(200);
    t.clock.advance(61_000);
    expect((await ping('10.6.0.1', ADMIN_TOKEN)).statusCode).toBe(200);
  });

  it('API-key guessing counts against the same per-address budget', async () => {
    const o = await createOrg(t);
    const admin = await loginAdmin(t, o);
    const m = await createMachineUser(t, o, admin.headers, []);
    const get = (remoteAddress: string, key: string) =>
      t.req('GET', '/be/v1/users/' + m.username, { headers: { ...m.headers, 'x-rockit-api-key': key }, remoteAddress });
    expect((await get('10.5.0.1', 'rkk_guess_1')).json().error).toBe('token-invalid');
    expect((await t.req('POST', '/adm/v1/ping', { headers: { 'x-rockit-admin-token': 'x'.repeat(40) }, remoteAddress: '10.5.0.1' })).statusCode).toBe(401);
    expect((await get('10.5.0.1', 'rkk_guess_2')).json().error).toBe('token-invalid');
    limited(await get('10.5.0.1', 'rkk_guess_3'));
    limited(await get('10.5.0.1', m.key));
    expect((await get('10.5.0.2', m.key)).statusCode).toBe(200);
    t.clock.advance(61_000);
  });
});
