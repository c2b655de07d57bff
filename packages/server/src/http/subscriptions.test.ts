import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_EVENT_NAMES } from '../webhooks/event.js';
import { createMachineUser, createOrg, createRole, createUser, loginAdmin, uniqueName, type OrgFixture, type Session } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

/** /be/v1/subscriptions (api.md §11): CRUD, validation, permissions and tenant isolation. */
describe.each(TEST_DIALECTS)('subscriptions API (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let admin: Session;
  beforeAll(async () => {
    t = await createTestServer({ dialect, env: { ROCKIT_NO_WORKER: 'true' } });
    org = await createOrg(t);
    admin = await loginAdmin(t, org);
  });
  afterAll(() => t?.close());

  const create = (headers: Record<string, string>, body: unknown) => t.req('POST', '/be/v1/subscriptions', { headers, body });

  it('creates, lists, reads and deletes; the secret is shown once and the URL only by its origin', async () => {
    const c = await create(admin.headers, {
      name: 'ops_hook', type: 'webhook', url: 'https://hooks.example.com:8443/in/T0KEN?sig=abc', events: ['deploy.end', 'deploy.error', 'deploy.end'],
    });
    expect(c.statusCode, c.body).toBe(201);
    const j = c.json();
    expect(j.status).toBe('success');
    expect(j.secret).toMatch(/^rkwh_[A-Za-z0-9_-]{43}$/);
    expect(j.subscription).toEqual({
      name: 'ops_hook', type: 'webhook', url: 'https://hooks.example.com:8443/…', events: ['deploy.end', 'deploy.error'],
      created: Math.floor(t.clock.now() / 1000), updated: Math.floor(t.clock.now() / 1000),
    });
    expect(c.body).not.toContain('T0KEN');
    // At rest: URL and secret sealed (never the plain text), the events list as given.
    const row = await sql<Record<string, unknown>>`select * from subscriptions where name = 'ops_hook'`.execute(t.server.db.db).then((r) => r.rows[0]);
    expect(String(row.url_sealed)).toMatch(/^v1:/);
    expect(String(row.secret_sealed)).toMatch(/^v1:/);
    expect(JSON.stringify(row)).not.toContain('T0KEN');
    expect(JSON.stringify(row)).not.toContain(j.secret);

    const s = await create(admin.headers, { name: 'team_slack', type: 'slack', url: 'https://hooks.slack.com/services/T1/B2/XYZ' });
    expect(s.statusCode, s.body).toBe(201);
    expect(s.json().subscription.events).toEqual(ALL_EVENT_NAMES);
    expect(s.json().secret).not.toBe(j.secret);

    const list = await t.req('GET', '/be/v1/subscriptions?name=HOO', { headers: admin.headers });
    expect(list.statusCode, list.body).toBe(200);
    expect(list.json()).toMatchObject({ status: 'success', total: 1, offset: 0, limit: 10 });
    expect(list.json().subscriptions.map((x: any) => x.name)).toEqual(['ops_hook']);
    const all = (await t.req('GET', '/be/v1/subscriptions?order[]=-name&fields[]=name,type', { headers: admin.headers })).json();
    expect(all.subscriptions).toEqual([{ name: 'team_slack', type: 'slack' }, { name: 'ops_hook', type: 'webhook' }]);
    expect((await t.req('GET', '/be/v1/subscriptions?type=slack', { headers: admin.headers })).json().total).toBe(1);
    expect(JSON.stringify(all)).not.toContain('secret');

    const one = await t.req('GET', '/be/v1/subscriptions/ops_hook', { headers: admin.headers });
    expect(one.statusCode).toBe(200);
    expect(one.json().subscription).toMatchObject({ name: 'ops_hook', deliveries: [] });
    expect(one.body).not.toContain(j.secret);
    expect(one.body).not.toContain('T0KEN');

    const d = await t.req('DELETE', '/be/v1/subscriptions/ops_hook', { headers: admin.headers });
    expect(d.statusCode).toBe(200);
    expect(d.json()).toEqual({ status: 'success' });
    expect((await t.req('GET', '/be/v1/subscriptions/ops_hook', { headers: admin.headers })).json().error).toBe('not-found');
    expect((await t.req('DELETE', '/be/v1/subscriptions/ops_hook', { headers: admin.headers })).json().error).toBe('not-found');
    // The name is free again.
    expect((await create(admin.headers, { name: 'ops_hook', type: 'webhook', url: 'http://hooks.example:9/x' })).statusCode).toBe(201);
  });

  it('refuses bad input with the documented error names', async () => {
    const cases: Array<[unknown, number, string, string | undefined]> = [
      [{ name: 'dup_hook', type: 'webhook', url: 'https://a.example/x' }, 201, '', undefined],
      [{ name: 'dup_hook', type: 'slack', url: 'https://b.example/y' }, 409, 'already-exists', 'name'],
      [{ name: 'e1', type: 'webhook', url: 'https://a.example', events: ['deploy.finish'] }, 400, 'invalid-param', 'events'],
      [{ name: 'e2', type: 'webhook', url: 'https://a.example', events: ['build.end'] }, 400, 'invalid-param', 'events'],
      [{ name: 'e3', type: 'webhook', url: 'https://a.example', events: [] }, 400, 'invalid-param', 'events'],
      [{ name: 'e4', type: 'webhook', url: 'https://a.example', events: 'deploy.end' }, 400, 'invalid-param', 'events'],
      [{ name: 'e5', type: 'email', url: 'https://a.example' }, 400, 'invalid-param', 'type'],
      [{ name: 'e6', type: 'webhook', url: 'ftp://a.example/x' }, 400, 'invalid-param', 'url'],
      [{ name: 'e7', type: 'webhook', url: 'not a url' }, 400, 'invalid-param', 'url'],
      // SSRF guard (on by default): private, loopback and link-local targets, by IP literal or `localhost`.
      ...['http://127.0.0.1/x', 'http://localhost/x', 'http://LocalHost.:8080/x', 'http://api.localhost/x', 'http://169.254.169.254/latest',
        'http://[::1]/', 'http://10.0.0.1/', 'https://192.168.1.20/x', 'http://[::ffff:127.0.0.1]/x', 'http://2130706433/x', 'http://[fd00::1]/x',
      ].map((url): [unknown, number, string, string] => [{ name: 'p1', type: 'webhook', url }, 400, 'invalid-param', 'url']),
      [{ name: 'p2', type: 'slack', url: 'http://127.0.0.2/services/T/B/X' }, 400, 'invalid-param', 'url'],
      [{ name: 'e8', type: 'webhook', url: 'https://a.example', secret: 'mine' }, 400, 'invalid-param', 'secret'],
      [{ name: 'e-9', type: 'webhook', url: 'https://a.example' }, 400, 'invalid-param', 'name'],
      [{ name: 'e10', type: 'webhook' }, 400, 'missing-param', 'url'],
      [{ type: 'webhook', url: 'https://a.example' }, 400, 'missing-param', 'name'],
      [[1, 2], 400, 'invalid-json', undefined],
    ];
    for (const [body, status, error, param] of cases) {
      const r = await create(admin.headers, body);
      expect(r.statusCode, `${JSON.stringify(body)} → ${r.body}`).toBe(status);
      if (error) expect(r.json(), JSON.stringify(body)).toMatchObject({ status: 'error', error, ...(param ? { param } : {}) });
    }
    const refused = (await create(admin.headers, { name: 'p3', type: 'webhook', url: 'http://169.254.169.254/latest' })).json();
    expect(refused.message).toMatch(/private, loopback or link-local/);
    // Names are not resolved at create time (they are checked at delivery).
    expect((await create(admin.headers, { name: 'p4', type: 'webhook', url: 'https://not-yet-resolvable.example/x' })).statusCode).toBe(201);
    expect((await t.req('GET', '/be/v1/subscriptions?order[]=url', { headers: admin.headers })).json()).toMatchObject({ error: 'invalid-param', param: 'order[]' });
  });

  it('needs subscriptions.* permissions, bit by bit', async () => {
    await create(admin.headers, { name: 'perm_hook', type: 'webhook', url: 'https://a.example/x' });
    const reader = await createUser(t, org, admin.headers, [await createRole(t, admin.headers, { subscriptions: 2 })]);
    const writer = await createMachineUser(t, org, admin.headers, [await createRole(t, admin.headers, { subscriptions: 1 | 8 })]);
    const none = await createUser(t, org, admin.headers, [await createRole(t, admin.headers, { apps: 15 })]);

    expect((await t.req('GET', '/be/v1/subscriptions', { headers: reader.headers })).statusCode).toBe(200);
    expect((await t.req('GET', '/be/v1/subscriptions/perm_hook', { headers: reader.headers })).statusCode).toBe(200);
    expect((await create(reader.headers, { name: 'r_hook', type: 'webhook', url: 'https://a.example' })).json())
      .toMatchObject({ error: 'forbidden', permission: 'subscriptions.create' });
    expect((await t.req('DELETE', '/be/v1/subscriptions/perm_hook', { headers: reader.headers })).json())
      .toMatchObject({ error: 'forbidden', permission: 'subscriptions.delete' });

    expect((await t.req('GET', '/be/v1/subscriptions', { headers: writer.headers })).json()).toMatchObject({ error: 'forbidden', permission: 'subscriptions.read' });
    expect((await t.req('GET', '/be/v1/subscriptions/perm_hook', { headers: writer.headers })).statusCode).toBe(403);
    const w = uniqueName('w');
    expect((await create(writer.headers, { name: w, type: 'slack', url: 'https://a.example' })).statusCode).toBe(201);
    expect((await t.req('DELETE', `/be/v1/subscriptions/${w}`, { headers: writer.headers })).statusCode).toBe(200);

    for (const [m, u, b] of [['GET', '/be/v1/subscriptions'], ['GET', '/be/v1/subscriptions/perm_hook'], ['DELETE', '/be/v1/subscriptions/perm_hook'],
      ['POST', '/be/v1/subscriptions', { name: 'n_hook', type: 'webhook', url: 'https://a.example' }]] as Array<[string, string, unknown]>) {
      const r = await t.req(m, u, { headers: none.headers, body: b });
      expect(r.statusCode, `${m} ${u}`).toBe(403);
      expect(r.json().permission).toMatch(/^subscriptions\./);
    }
    expect((await t.req('GET', '/be/v1/subscriptions')).json().error).toBe('token-missing');
    expect((await t.req('GET', '/be/v1/subscriptions', { headers: t.admin })).json().error).toBe('token-missing');
    expect((await t.req('GET', '/be/v1/subscriptions/perm_hook', { headers: admin.headers })).statusCode).toBe(200);
  });

  it("never shows or touches another organization's subscription", async () => {
    const other = await createOrg(t);
    const otherAdmin = await loginAdmin(t, other);
    const robot = await createMachineUser(t, other, otherAdmin.headers, ['Administrators']);
    await create(admin.headers, { name: 'mine_hook', type: 'webhook', url: 'https://a.example/x' });
    for (const h of [otherAdmin.headers, robot.headers]) {
      expect((await t.req('GET', '/be/v1/subscriptions/mine_hook', { headers: h })).json()).toMatchObject({ error: 'not-found' });
      expect((await t.req('DELETE', '/be/v1/subscriptions/mine_hook', { headers: h })).statusCode).toBe(404);
      expect((await t.req('GET', '/be/v1/subscriptions?limit=1000', { headers: h })).json().total).toBe(0);
    }
    // The same name is free in the other org, and both stay independent.
    expect((await create(otherAdmin.headers, { name: 'mine_hook', type: 'slack', url: 'https://b.example/y' })).statusCode).toBe(201);
    expect((await t.req('GET', '/be/v1/subscriptions/mine_hook', { headers: admin.headers })).json().subscription.type).toBe('webhook');
    expect((await t.req('GET', '/be/v1/subscriptions/mine_hook', { headers: robot.headers })).json().subscription.type).toBe('slack');
  });
});
