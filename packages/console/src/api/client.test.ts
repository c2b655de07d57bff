// The console's API client against the real server over HTTP: an auth token past its 5 minutes is
// renewed without the user noticing, an ended session is reported as `expired`, machine users cannot
// sign in, sign-out revokes the session.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../../../server/src/test-support/test-server.js';
import { createMachineUser, createOrg, loginAdmin, type OrgFixture } from '../../../server/src/test-support/factories.js';
import { Api, ApiError } from './client';

class MemoryStorage {
  private m = new Map<string, string>();
  getItem(k: string) { return this.m.get(k) ?? null; }
  setItem(k: string, v: string) { this.m.set(k, v); }
  removeItem(k: string) { this.m.delete(k); }
}

describe.each(TEST_DIALECTS)('console API client (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let base: string;
  beforeAll(async () => {
    t = await createTestServer({ dialect, env: { ROCKIT_NO_WORKER: 'true' } });
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    org = await createOrg(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  const api = () => new Api(base, new MemoryStorage() as unknown as Storage);

  it('renews a lapsed auth token silently; an ended session is reported as expired', async () => {
    const a = api();
    const events: string[] = [];
    a.on((e) => events.push(e));
    await a.login(org.name, org.adminUsername, org.adminPassword);
    expect(a.session?.permissions.apps).toBe(15);
    expect((await a.get('/be/v1/apps')).status).toBe('success');
    // Past the auth token's 5 minutes (the server's clock): the next call still succeeds.
    t.clock.advance(6 * 60 * 1000);
    expect((await a.get('/be/v1/apps')).status).toBe('success');
    // Past the session's 24 hours: the call fails and the console hears `expired`.
    t.clock.advance(25 * 3600 * 1000);
    await expect(a.get('/be/v1/apps')).rejects.toBeInstanceOf(ApiError);
    expect(events).toEqual(['signed-in', 'expired']);
    expect(a.session).toBeNull();
  });

  it('sign-out revokes the session on the server', async () => {
    const a = api();
    await a.login(org.name, org.adminUsername, org.adminPassword);
    const token = a.session!.token;
    await a.logout();
    const r = await t.req('POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': token } });
    expect(r.statusCode).toBe(401);
  });

  it('machine users (API keys) cannot sign in; a wrong password says invalid-credentials', async () => {
    const admin = await loginAdmin(t, org);
    const m = await createMachineUser(t, org, admin.headers, []);
    for (const [user, pw] of [[m.username, 'anything-at-all'], [org.adminUsername, 'wrong']]) {
      const err = await api().login(org.name, user!, pw!).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe('invalid-credentials');
    }
  });
});
