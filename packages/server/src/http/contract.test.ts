import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, loginAdmin } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

describe.each(TEST_DIALECTS)('HTTP contract basics (%s)', (dialect) => {
  let t: TestServer;
  let pruned: string[];
  beforeAll(async () => {
    pruned = [];
    t = await createTestServer({
      dialect,
      env: { ROCKIT_BODY_LIMIT_BYTES: '2048' },
      selfChecks: [{ name: 'probe_store', run: async () => {} }],
      hooks: {
        pruneOrgFiles: async (org) => {
          if (org.startsWith('boom')) throw new Error('disk on fire at /secret/path');
          pruned.push(org);
        },
      },
    });
  });
  afterAll(() => t?.close());

  it('answers versions and health without credentials, with x-request-id', async () => {
    const v = await t.req('GET', '/srv/v1/versions');
    expect(v.statusCode).toBe(200);
    expect(v.headers['x-request-id']).toMatch(/.+/);
    expect(v.json()).toMatchObject({ status: 'success', versions: { api: 'v1', edge: expect.any(String), engine: expect.any(String) } });
    expect(Object.keys(v.json().versions.formats).sort()).toEqual(['dxf', 'patch', 'trace']);
    // Read from the engine's exported format constants.
    expect(v.json().versions.formats.dxf).toBeGreaterThan(0);
    expect(v.json().versions.formats.trace).toBeGreaterThan(0);
    expect(v.json().versions.formats.patch).toBeGreaterThan(0);
    const h = await t.req('GET', '/srv/v1/health');
    expect(h.statusCode).toBe(200);
    expect(h.json().health).toMatchObject({ live: true, ready: true, database: 'ok', workers: { enabled: true, alive: true } });
  });

  it('keeps a well-formed incoming x-request-id and replaces a malformed one', async () => {
    const a = await t.req('GET', '/srv/v1/versions', { headers: { 'x-request-id': 'abc-123' } });
    expect(a.headers['x-request-id']).toBe('abc-123');
    const b = await t.req('GET', '/srv/v1/versions', { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(b.headers['x-request-id']).not.toBe('bad id with spaces');
  });

  it('pings with the admin token; 401 token-missing / token-invalid without or with a wrong one', async () => {
    const ok = await t.req('POST', '/adm/v1/ping', { headers: t.admin });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ status: 'success', pong: true, time: Math.floor(t.clock.now() / 1000) });
    const none = await t.req('POST', '/adm/v1/ping');
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ status: 'error', error: 'token-missing' });
    const bad = await t.req('POST', '/adm/v1/ping', { headers: { 'x-rockit-admin-token': 'wrong-token-wrong-token' } });
    expect(bad.statusCode).toBe(401);
    expect(bad.json().error).toBe('token-invalid');
  });

  it('404 not-found for an unknown route, in the envelope', async () => {
    const r = await t.req('GET', '/be/v1/nothing-here');
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ status: 'error', error: 'not-found' });
    expect(r.headers['x-request-id']).toBeTruthy();
  });

  it('maps body problems to missing-param, invalid-param, invalid-json, 415 and 413', async () => {
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      t.req('POST', '/adm/v1/orgs', { headers: { ...t.admin, ...headers }, body });
    const cases: Array<[unknown, Record<string, string>, number, string, string?]> = [
      [{}, {}, 400, 'missing-param', 'name'],
      [{ name: 'x' }, {}, 400, 'invalid-param', 'name'],
      [{ name: 12 }, {}, 400, 'invalid-param', 'name'],
      [{ name: 'okname', typo: 1 }, {}, 400, 'invalid-param', 'typo'],
      [{ name: 'okname', label: true }, {}, 400, 'invalid-param', 'label'],
      ['null', { 'content-type': 'application/json' }, 400, 'invalid-json'],
      ['[1,2]', { 'content-type': 'application/json' }, 400, 'invalid-json'],
      ['{not json', { 'content-type': 'application/json' }, 400, 'invalid-json'],
      ['name=abc', { 'content-type': 'text/plain' }, 415, 'unsupported-media-type'],
      ['a=b', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'unsupported-media-type'],
      [JSON.stringify({ name: 'big', label: 'x'.repeat(5000) }), { 'content-type': 'application/json' }, 413, 'payload-too-large'],
    ];
    for (const [body, headers, status, error, param] of cases) {
      const r = await post(body, headers);
      expect(r.statusCode, `${JSON.stringify(body)} → ${r.body}`).toBe(status);
      expect(r.json().status).toBe('error');
      expect(r.json().error).toBe(error);
      if (param) expect(r.json().param).toBe(param);
      expect(r.body).not.toMatch(/at .*\.ts|node_modules|stack/);
    }
    const noBody = await t.req('POST', '/adm/v1/orgs', { headers: t.admin });
    expect(noBody.json()).toMatchObject({ error: 'missing-param', param: 'name' });
    const emptyJson = await t.req('POST', '/adm/v1/orgs', { headers: { ...t.admin, 'content-type': 'application/json' }, body: '' });
    expect(emptyJson.json()).toMatchObject({ error: 'missing-param', param: 'name' });
    const poisoned = await post('{"name":"okname","__proto__":{"x":1}}', { 'content-type': 'application/json' });
    expect(poisoned.statusCode).toBe(400);
    const ping = await t.req('POST', '/adm/v1/ping', { headers: { ...t.admin, 'content-type': 'application/json' }, body: '' });
    expect(ping.statusCode).toBe(200);
  });

  it('never coerces body types: "true" is not a boolean', async () => {
    const r = await t.req('POST', '/adm/v1/hello', { headers: t.admin, body: { message: 'x', maintenance: 'true' } });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ error: 'invalid-param', param: 'maintenance' });
  });

  it('validates list queries: limit range, unknown order or fields', async () => {
    for (const [qs, param] of [
      ['limit=0', 'limit'], ['limit=1001', 'limit'], ['offset=-1', 'offset'], ['limit=abc', 'limit'],
      ['order[]=-nope', 'order[]'], ['fields[]=name,nope', 'fields[]'],
    ]) {
      const r = await t.req('GET', `/adm/v1/orgs?${qs}`, { headers: t.admin });
      expect(r.statusCode, qs).toBe(400);
      expect(r.json()).toMatchObject({ error: 'invalid-param', param });
    }
  });

  it('lists with offset, limit, order (all three forms) and projection', async () => {
    const names = ['lst_b', 'lst_a', 'lst_c'];
    for (const n of names) await createOrg(t, n);
    const all = await t.req('GET', '/adm/v1/orgs?limit=1000&order[]=-name', { headers: t.admin });
    const listed = all.json().orgs.map((o: any) => o.name).filter((n: string) => n.startsWith('lst_'));
    expect(listed).toEqual(['lst_c', 'lst_b', 'lst_a']);
    const br = await t.req('GET', '/adm/v1/orgs?limit=1000&order[]=[-name]', { headers: t.admin });
    expect(br.json().orgs.map((o: any) => o.name).filter((n: string) => n.startsWith('lst_'))).toEqual(['lst_c', 'lst_b', 'lst_a']);
    const page = await t.req('GET', '/adm/v1/orgs?offset=1&limit=1&order[]=%2Bname&fields[]=name', { headers: t.admin });
    const j = page.json();
    expect(j).toMatchObject({ status: 'success', offset: 1, limit: 1 });
    expect(j.total).toBeGreaterThanOrEqual(3);
    expect(j.orgs).toHaveLength(1);
    expect(Object.keys(j.orgs[0])).toEqual(['name']);
    const two = await t.req('GET', '/adm/v1/orgs?fields[]=name&fields[]=created&limit=1', { headers: t.admin });
    expect(Object.keys(two.json().orgs[0]).sort()).toEqual(['created', 'name']);
    const def = await t.req('GET', '/adm/v1/orgs', { headers: t.admin });
    expect(def.json().limit).toBe(10);
  });

  it('creates, gets and deletes orgs; names are unique; prune calls the hook; 404 after', async () => {
    const org = await createOrg(t, 'adm_org1');
    expect(org.adminUsername).toBe('admin');
    expect(org.adminPassword.length).toBeGreaterThanOrEqual(16);
    const dup = await t.req('POST', '/adm/v1/orgs', { headers: t.admin, body: { name: 'adm_org1' } });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error).toBe('already-exists');
    const g = await t.req('GET', '/adm/v1/orgs/adm_org1', { headers: t.admin });
    expect(g.json()).toEqual({ status: 'success', org: { name: 'adm_org1', label: 'adm_org1', created: expect.any(Number), updated: expect.any(Number) } });
    const custom = await t.req('POST', '/adm/v1/orgs', {
      headers: t.admin, body: { name: 'adm_org2', label: 'Org Two', adminUsername: 'boss', adminEmail: 'boss@example.com' },
    });
    expect(custom.statusCode).toBe(201);
    expect(custom.json().admin.username).toBe('boss');
    const s = await loginAdmin(t, { name: 'adm_org2', adminUsername: 'boss', adminPassword: custom.json().admin.password });
    const d1 = await t.req('DELETE', '/adm/v1/orgs/adm_org1', { headers: t.admin });
    expect(d1.statusCode).toBe(200);
    expect(pruned).not.toContain('adm_org1');
    const d2 = await t.req('DELETE', '/adm/v1/orgs/adm_org2?prune=true', { headers: t.admin });
    expect(d2.statusCode).toBe(200);
    expect(pruned).toContain('adm_org2');
    expect((await t.req('GET', '/adm/v1/orgs/adm_org1', { headers: t.admin })).statusCode).toBe(404);
    expect((await t.req('DELETE', '/adm/v1/orgs/adm_org1', { headers: t.admin })).json().error).toBe('not-found');
    // The deleted org's tokens died with it.
    const gone = await t.req('GET', '/be/v1/roles', { headers: s.headers });
    expect(gone.statusCode).toBe(401);
  });

  it('answers 500 internal with a requestId and no internals', async () => {
    await createOrg(t, 'boom_org');
    const r = await t.req('DELETE', '/adm/v1/orgs/boom_org?prune=true', { headers: t.admin });
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({ status: 'error', error: 'internal', message: 'internal error', requestId: r.headers['x-request-id'] });
    expect(r.body).not.toContain('/secret/path');
  });

  it('runs a hello task end to end through the worker', async () => {
    const r = await t.req('POST', '/adm/v1/hello', { headers: t.admin, body: { message: 'hello world' } });
    expect(r.statusCode).toBe(202);
    const task = r.json().task;
    expect(task).toMatchObject({ type: 'hello', status: 'submitted', appName: null });
    expect(task.name).toMatch(/^t_[0-9A-Z]{26}$/);
    let got: any;
    for (let i = 0; i < 200; i++) {
      got = (await t.req('GET', `/adm/v1/tasks/${task.name}`, { headers: t.admin })).json().task;
      if (got.status === 'succeeded' || got.status === 'failed') break;
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(got).toMatchObject({ status: 'succeeded', attempts: 1, progress: 1, result: { message: 'hello world', maintenance: false, checks: [] } });
    expect((await t.req('GET', '/adm/v1/tasks/t_nope', { headers: t.admin })).statusCode).toBe(404);
    const m = await t.req('POST', '/adm/v1/hello', { headers: t.admin, body: { message: 'maint', maintenance: true } });
    let mt: any;
    for (let i = 0; i < 200; i++) {
      mt = (await t.req('GET', `/adm/v1/tasks/${m.json().task.name}`, { headers: t.admin })).json().task;
      if (mt.status === 'succeeded' || mt.status === 'failed') break;
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(mt.result).toEqual({ message: 'maint', maintenance: true, checks: [{ name: 'probe_store', ok: true }] });
  });

  it('serves an OpenAPI 3.1 document describing every route and status, and /docs', async () => {
    const r = await t.req('GET', '/openapi.json');
    expect(r.statusCode).toBe(200);
    const doc = r.json();
    expect(doc.openapi).toBe('3.1.0');
    // It opens with how to get going, then the project's CHANGELOG.md from its first release section on.
    expect(doc.info.description).toMatch(/^The HTTP API of ROCKIT Edge/);
    expect(doc.info.description).toContain('**Getting started.**');
    expect(doc.info.description).toMatch(/## Changelog\n\n### \[Unreleased\]/);
    expect(doc.info.description).not.toContain('Keep a Changelog');
    // The server's own address leads a browser to the reference.
    const root = await t.req('GET', '/');
    expect(root.statusCode).toBe(302);
    expect(root.headers.location).toBe('/docs');
    for (const [p, methods] of [
      ['/adm/v1/ping', ['post']], ['/adm/v1/hello', ['post']], ['/adm/v1/orgs', ['post', 'get']], ['/adm/v1/orgs/{name}', ['get', 'delete']],
      ['/adm/v1/tasks/{name}', ['get']], ['/srv/v1/versions', ['get']], ['/srv/v1/health', ['get']],
      ['/be/v1/login', ['post']], ['/be/v1/auth', ['post']], ['/be/v1/logout', ['post']], ['/be/v1/apikeys', ['post']],
      ['/be/v1/apikeys/{id}', ['delete']], ['/be/v1/orgs', ['post']], ['/be/v1/orgs/{name}', ['delete']],
      ['/be/v1/users', ['post', 'get', 'patch']], ['/be/v1/users/{username}', ['get', 'delete']],
      ['/be/v1/roles', ['post', 'get', 'patch']], ['/be/v1/roles/{name}', ['get', 'delete']],
      ['/be/v1/tasks', ['get']], ['/be/v1/tasks/{name}', ['get']],
    ] as const) {
      for (const m of methods) {
        const op = doc.paths[p]?.[m];
        expect(op, `${m} ${p}`).toBeDefined();
        const statuses = Object.keys(op.responses);
        expect(statuses.some((s) => s.startsWith('2')), `${m} ${p} success`).toBe(true);
        expect(statuses, `${m} ${p}`).toEqual(expect.arrayContaining(['400', '404', '500']));
      }
    }
    const ui = await t.req('GET', '/docs/');
    expect(ui.statusCode).toBe(200);
  });
});
