// The web console's files at /apps/mc (issue 10): the SPA with its fallback, a strict CSP, path
// traversal refused, 503 when not built; and the API addition it needs: GET /be/v1/consumption?months=N.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';
import { createOrg, createRole, createUser, loginAdmin, type OrgFixture } from '../test-support/factories.js';
import { createApp } from '../test-support/imports.js';
import { consoleFile } from './routes/console.routes.js';

const INDEX = '<!doctype html><title>console</title><div id="root"></div>';

describe('consoleFile (pure)', () => {
  const dir = '/srv/console';
  it('maps plain segments inside the folder and refuses everything else', () => {
    expect(consoleFile(dir, 'assets/a.js')).toBe('/srv/console/assets/a.js');
    for (const bad of ['', '..', '../x', 'assets/../../x', 'a//b', './a', 'a\\..\\b', '%2e%2e/x', 'a%2f..%2f..%2fx', '%E0%A4%A', 'a\0b', `${'x'.repeat(256)}`]) {
      expect(consoleFile(dir, bad), bad).toBeNull();
    }
  });
});

describe.each(TEST_DIALECTS)('web console at /apps/mc (%s)', (dialect) => {
  let t: TestServer;
  let bare: TestServer;
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-console-'));
    fs.mkdirSync(path.join(dir, 'assets'));
    fs.writeFileSync(path.join(dir, 'index.html'), INDEX);
    fs.writeFileSync(path.join(dir, 'assets', 'index-abc.js'), 'console.log(1)');
    // A secret beside the console folder: traversal must never reach it.
    fs.writeFileSync(path.join(path.dirname(dir), `${path.basename(dir)}-outside.txt`), 'OUTSIDE-CONTENT-42');
    t = await createTestServer({ dialect, env: { ROCKIT_NO_WORKER: 'true', ROCKIT_CONSOLE_DIR: dir } });
    bare = await createTestServer({ dialect, env: { ROCKIT_NO_WORKER: 'true', ROCKIT_CONSOLE_DIR: path.join(dir, 'missing') } });
  });
  afterAll(async () => {
    await t?.close();
    await bare?.close();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(path.join(path.dirname(dir), `${path.basename(dir)}-outside.txt`), { force: true });
  });

  it('serves index.html with a strict CSP, and redirects /apps/mc to /apps/mc/', async () => {
    const r = await t.req('GET', '/apps/mc/');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.body).toBe(INDEX);
    const csp = String(r.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['cache-control']).toBe('no-cache');
    const redirect = await t.req('GET', '/apps/mc');
    expect(redirect.statusCode).toBe(302);
    expect(redirect.headers.location).toBe('/apps/mc/');
  });

  it('answers index.html for client-side routes (SPA fallback), assets as themselves', async () => {
    for (const route of ['/apps/mc/apps', '/apps/mc/apps/demo', '/apps/mc/roles/Administrators?x=1']) {
      const r = await t.req('GET', route);
      expect(r.statusCode, route).toBe(200);
      expect(r.body, route).toBe(INDEX);
    }
    const js = await t.req('GET', '/apps/mc/assets/index-abc.js');
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.headers['cache-control']).toContain('immutable');
    expect(js.body).toBe('console.log(1)');
  });

  it('a missing asset is a 404 in the error envelope, not the page', async () => {
    for (const url of ['/apps/mc/assets/old-123.js', '/apps/mc/favicon.png']) {
      const r = await t.req('GET', url);
      expect(r.statusCode, url).toBe(404);
      expect(r.json()).toMatchObject({ status: 'error', error: 'not-found' });
    }
  });

  it('refuses path traversal in every spelling, never reading outside the console folder', async () => {
    const name = `${path.basename(dir)}-outside.txt`;
    for (const url of [
      `/apps/mc/../${name}`, `/apps/mc/..%2f${name}`, `/apps/mc/%2e%2e/${name}`, `/apps/mc/%2e%2e%2f${name}`,
      `/apps/mc/assets/..%2f..%2f${name}`, `/apps/mc/assets/%2e%2e/%2e%2e/${name}`, `/apps/mc/..%5c${name}`,
      '/apps/mc/..%2f..%2f..%2f..%2fetc%2fpasswd', '/apps/mc/%252e%252e/x.txt', '/apps/mc/a%00.js',
    ]) {
      const r = await t.req('GET', url);
      expect(r.body, url).not.toContain('OUTSIDE-CONTENT-42');
      expect(r.body, url).not.toContain('root:');
      if (r.statusCode === 200) expect(r.body, url).toBe(INDEX);
      else expect([400, 404], url).toContain(r.statusCode);
    }
  });

  it('answers 503 unavailable in the envelope when the console is not built', async () => {
    for (const url of ['/apps/mc/', '/apps/mc/apps', '/apps/mc/assets/a.js']) {
      const r = await bare.req('GET', url);
      expect(r.statusCode, url).toBe(503);
      expect(r.json()).toMatchObject({ status: 'error', error: 'unavailable' });
      expect(r.json().message).toContain('npm run build');
    }
  });

  it('is not part of the API reference', async () => {
    const doc = (await t.req('GET', '/openapi.json')).json();
    expect(Object.keys(doc.paths).some((p) => p.startsWith('/apps/mc'))).toBe(false);
  });
});

describe.each(TEST_DIALECTS)('GET /be/v1/consumption?months (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let other: OrgFixture;
  beforeAll(async () => {
    t = await createTestServer({ dialect, env: { ROCKIT_NO_WORKER: 'true' } });
    org = await createOrg(t);
    other = await createOrg(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  const DAY = 24 * 3600 * 1000;
  const addBuild = async (appId: string, buildId: number, createdMs: number, sizeBytes: number, imageBytes: number) => {
    await (t.server.db.db as any).insertInto('builds').values({
      app_id: appId, build_id: buildId, build_name: null, size_bytes: sizeBytes, image_bytes: imageBytes, files: 1, dxf_name: null, state: 'ready', created_ms: createdMs,
    }).execute();
  };

  it('answers the last N months, oldest first, with what the records hold per creation month', async () => {
    // The clock stands at 2026-01-01: builds in Dec 2025 and Jan 2026, one in Oct 2025 (outside 3 months).
    const app = await createApp(t, org);
    const now = t.clock.now();
    await addBuild(app.id, 1, now - 80 * DAY, 1000, 500);
    await addBuild(app.id, 2, now - 10 * DAY, 2000, 700);
    await addBuild(app.id, 3, now + 2 * DAY, 3000, 900);
    await (t.server.db.db as any).insertInto('patches').values({ app_id: app.id, from_build_id: 2, to_build_id: 3, size_bytes: 40, created_ms: now + 2 * DAY }).execute();
    // Another org's build in the same month is not counted.
    const foreign = await createApp(t, other);
    await addBuild(foreign.id, 1, now + DAY, 99999, 99999);
    t.clock.advance(5 * DAY);

    const admin = await loginAdmin(t, org);
    const r = await t.req('GET', '/be/v1/consumption?months=3', { headers: admin.headers });
    expect(r.statusCode, r.body).toBe(200);
    const months = r.json().consumption.months;
    expect(months.map((m: any) => m.month)).toEqual(['2025-11', '2025-12', '2026-01']);
    expect(months[0]).toMatchObject({ builds: 0, buildsBytes: 0, imagesBytes: 0, patchesBytes: 0, traces: 0, tracesBytes: 0 });
    expect(months[1]).toMatchObject({ builds: 1, buildsBytes: 2000, imagesBytes: 700, patchesBytes: 0 });
    expect(months[2]).toMatchObject({ builds: 1, buildsBytes: 3000, imagesBytes: 900, patchesBytes: 40 });
    // Without `months`: the answer as before, no series.
    const plain = await t.req('GET', '/be/v1/consumption', { headers: admin.headers });
    expect(plain.statusCode).toBe(200);
    expect(plain.json().consumption.months).toBeUndefined();
    const otherAdmin = await loginAdmin(t, other);
    const theirs = (await t.req('GET', '/be/v1/consumption?months=1', { headers: otherAdmin.headers })).json().consumption.months;
    expect(theirs).toEqual([expect.objectContaining({ month: '2026-01', builds: 1, buildsBytes: 99999 })]);
  });

  it('refuses a months value out of range or not an integer, naming it', async () => {
    const admin = await loginAdmin(t, org);
    for (const q of ['months=0', 'months=37', 'months=-1', 'months=abc', 'months=1.5', `months=${'9'.repeat(400)}`]) {
      const r = await t.req('GET', `/be/v1/consumption?${q}`, { headers: admin.headers });
      expect(r.statusCode, q).toBe(400);
      expect(r.json(), q).toMatchObject({ status: 'error', error: 'invalid-param', param: 'months' });
    }
    const unknown = await t.req('GET', '/be/v1/consumption?month=3', { headers: admin.headers });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json()).toMatchObject({ error: 'invalid-param', param: 'month' });
  });

  it('needs credentials and consumption.read', async () => {
    expect((await t.req('GET', '/be/v1/consumption?months=2')).json()).toMatchObject({ error: 'token-missing' });
    const admin = await loginAdmin(t, org);
    const role = await createRole(t, admin.headers, { apps: 2 });
    const u = await createUser(t, org, admin.headers, [role]);
    const r = await t.req('GET', '/be/v1/consumption?months=2', { headers: u.headers });
    expect(r.statusCode).toBe(403);
    expect(r.json()).toMatchObject({ error: 'forbidden', permission: 'consumption.read' });
  });
});

describe.each(TEST_DIALECTS)('PATCH /be/v1/apps locked (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let other: OrgFixture;
  beforeAll(async () => {
    t = await createTestServer({ dialect, env: { ROCKIT_NO_WORKER: 'true' } });
    org = await createOrg(t);
    other = await createOrg(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a locked app refuses imports and set-live with app-locked; unlocked, it takes them again', async () => {
    const admin = await loginAdmin(t, org);
    const app = await createApp(t, org);
    const lock = await t.req('PATCH', '/be/v1/apps', { headers: admin.headers, body: { name: app.name, locked: true } });
    expect(lock.statusCode, lock.body).toBe(200);
    expect(lock.json().app).toMatchObject({ locked: true, error: null });
    const refused = await t.req('POST', '/be/v1/builds', { headers: admin.headers, body: { appName: app.name } });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ error: 'app-locked' });
    expect(refused.json().message).toContain('unlock');
    const live = await t.req('PATCH', '/be/v1/apps', { headers: admin.headers, body: { name: app.name, iCurBuild: 1 } });
    expect(live.json()).toMatchObject({ error: 'app-locked' });
    const unlock = await t.req('PATCH', '/be/v1/apps', { headers: admin.headers, body: { name: app.name, locked: false } });
    expect(unlock.json().app).toMatchObject({ locked: false });
    expect((await t.req('POST', '/be/v1/builds', { headers: admin.headers, body: { appName: app.name } })).statusCode).toBe(202);
  });

  it('an app locked by a failed deploy cannot be unlocked by hand (retry the task)', async () => {
    const admin = await loginAdmin(t, org);
    const app = await createApp(t, org);
    const error = JSON.stringify({ task: 't_failed', type: 'deploy', message: 'origin down', since: 1 });
    await (t.server.db.db as any).updateTable('apps').set({ locked: 1, error }).where('id', '=', app.id).execute();
    const r = await t.req('PATCH', '/be/v1/apps', { headers: admin.headers, body: { name: app.name, locked: false } });
    expect(r.statusCode).toBe(409);
    expect(r.json()).toMatchObject({ error: 'app-locked', task: 't_failed' });
    expect((await t.req('GET', `/be/v1/apps/${app.name}`, { headers: admin.headers })).json().app).toMatchObject({ locked: true });
  });

  it('refuses a locked that is not a boolean, needs apps.update, and never reaches another org', async () => {
    const admin = await loginAdmin(t, org);
    const app = await createApp(t, org);
    for (const locked of ['true', 1, null]) {
      const r = await t.req('PATCH', '/be/v1/apps', { headers: admin.headers, body: { name: app.name, locked } });
      expect(r.statusCode, String(locked)).toBe(400);
      expect(r.json()).toMatchObject({ error: 'invalid-param', param: 'locked' });
    }
    const role = await createRole(t, admin.headers, { apps: 2 });
    const u = await createUser(t, org, admin.headers, [role]);
    const denied = await t.req('PATCH', '/be/v1/apps', { headers: u.headers, body: { name: app.name, locked: true } });
    expect(denied.json()).toMatchObject({ error: 'forbidden', permission: 'apps.update' });
    const theirs = await loginAdmin(t, other);
    const foreign = await t.req('PATCH', '/be/v1/apps', { headers: theirs.headers, body: { name: app.name, locked: true } });
    expect(foreign.statusCode).toBe(404);
    expect((await t.req('GET', `/be/v1/apps/${app.name}`, { headers: admin.headers })).json().app.locked).toBe(false);
  });
});
