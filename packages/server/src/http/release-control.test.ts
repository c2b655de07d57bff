// Release control (issue 13 item 5): staged imports (POST /be/v1/builds live:false), set-live and rollback
// (PATCH /be/v1/apps iCurBuild), and the cleanup that must not delete files of a kept build.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRow } from '../db/app-tables.js';
import { findApp, setAppDeployments } from '../db/repositories/app.repository.js';
import { insertDeployment } from '../db/repositories/deployment.repository.js';
import { findOrgByName } from '../db/repositories/org.repository.js';
import { startHttpServer } from '../pipeline/test-support/fixtures.js';
import { createOrg, createRole, createUser, loginAdmin, uniqueName, type OrgFixture, type Session } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';
import { PIPELINE, createApp, depotFile, env, fsDeployment, gameTar, settle, task, upload } from '../test-support/imports.js';


const release = (t: TestServer, org: string, app: string) => t.app.inject({ method: 'GET', url: `/cdn/dxf/${org}/${app}/release.json` }).then((r) => r.json());
const fsRelease = (dir: string, org: string, app: string) => JSON.parse(fs.readFileSync(path.join(dir, 'dxf', org, app, 'release.json'), 'utf8'));

describe.each(TEST_DIALECTS)('release control (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let admin: Session;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-release-'));
    t = await createTestServer({ dialect, env });
    org = await createOrg(t);
    admin = await loginAdmin(t, org);
  });
  afterAll(async () => {
    await t?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** An app publishing to the depot and one fs deployment (its folder returned). */
  async function appWithOrigin(maxBuilds = 5): Promise<{ app: AppRow; origin: string }> {
    const app = await createApp(t, org, maxBuilds);
    const origin = fs.mkdtempSync(path.join(dir, 'origin-'));
    const dep = fsDeployment(app.org_id, origin, t.clock.now());
    await insertDeployment(t.server.db.db, dep);
    await setAppDeployments(t.server.db.db, app.id, [dep.id]);
    return { app, origin };
  }

  async function push(app: AppRow, variant: number, live?: boolean): Promise<void> {
    const r = await upload(t, admin.headers, app.name, await gameTar(variant), { buildName: `v${variant}`, ...(live === undefined ? {} : { live }) });
    expect(r.put.statusCode, r.put.body).toBe(200);
    const tasks = await settle(t, admin.headers, app.name);
    expect(tasks.filter((x) => PIPELINE.includes(x.type)).every((x) => x.status === 'succeeded'), JSON.stringify(tasks)).toBe(true);
  }

  async function setLive(app: AppRow, build: number): Promise<any> {
    const r = await t.req('PATCH', '/be/v1/apps', { headers: admin.headers, body: { name: app.name, iCurBuild: build } });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().task).toMatchObject({ type: 'deploy', buildId: build });
    await settle(t, admin.headers, app.name);
    expect((await task(t, admin.headers, r.json().task.name)).status).toBe('succeeded');
    return r.json();
  }

  it('a staged push publishes the image but not release.json; set-live and rollback change release.json on every origin', async () => {
    const { app, origin } = await appWithOrigin();
    await push(app, 1);
    expect(await release(t, org.name, app.name)).toMatchObject({ buildId: 1 });
    expect(fsRelease(origin, org.name, app.name)).toMatchObject({ buildId: 1 });

    // Staged: build 2's image and patch are on the origin, release.json still names build 1.
    await push(app, 2, false);
    expect(await release(t, org.name, app.name)).toMatchObject({ buildId: 1 });
    expect(fsRelease(origin, org.name, app.name)).toMatchObject({ buildId: 1 });
    expect(fs.existsSync(path.join(origin, 'dxf', org.name, app.name, '0002', 'b0002-t000', 'image.json'))).toBe(true);
    expect(fs.existsSync(path.join(origin, 'pat', org.name, app.name, '0002', '0001', 'patch.json'))).toBe(true);
    let row = await findApp(t.server.db.db, app.org_id, app.name);
    expect(row).toMatchObject({ i_cur_build: 1, processing: 0 });

    // Set-live build 2: release.json names it, with the patch from build 1, everywhere.
    await setLive(app, 2);
    for (const rel of [await release(t, org.name, app.name), fsRelease(origin, org.name, app.name)]) {
      expect(rel).toMatchObject({ buildId: 2, buildName: 'v2', patches: [{ fromBuildId: 1, toBuildId: 2 }] });
    }
    expect(await findApp(t.server.db.db, app.org_id, app.name)).toMatchObject({ i_cur_build: 2, dxf_name: 'b0002-t000' });

    // Rollback to build 1: release.json names it on every origin; no patch leads to it (none is kept).
    await setLive(app, 1);
    for (const rel of [await release(t, org.name, app.name), fsRelease(origin, org.name, app.name)]) {
      expect(rel).toMatchObject({ buildId: 1, buildName: 'v1', patches: [] });
    }
    row = await findApp(t.server.db.db, app.org_id, app.name);
    expect(row).toMatchObject({ i_cur_build: 1, processing: 0, locked: 0, error: null });

    // Past the grace period the cleanups run; neither kept build loses its image in the depot.
    t.clock.advance(61_000);
    t.server.worker?.poke();
    for (let i = 0; i < 500; i++) {
      const tasks = await t.req('GET', `/be/v1/tasks?appName=${app.name}&type=cleanup&limit=100`, { headers: admin.headers });
      if ((tasks.json().tasks as any[]).every((x) => x.status !== 'submitted' && x.status !== 'running')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(fs.existsSync(depotFile(t, `dxf/${org.name}/${app.name}/0001/b0001-t000/image.json`))).toBe(true);
    expect(fs.existsSync(depotFile(t, `dxf/${org.name}/${app.name}/0002/b0002-t000/image.json`))).toBe(true);
    // Forward again to build 2 works from the depot (its image left the origin with the cleanup).
    await setLive(app, 2);
    expect(fsRelease(origin, org.name, app.name)).toMatchObject({ buildId: 2 });
    expect(fs.existsSync(path.join(origin, 'dxf', org.name, app.name, '0002', 'b0002-t000', 'image.json'))).toBe(true);
  }, 120_000);

  it('staged pushes never rotate the live build out', async () => {
    const { app } = await appWithOrigin(2);
    await push(app, 1);
    await push(app, 2, false);
    await push(app, 3, false);
    const r = await t.req('GET', `/be/v1/apps/${app.name}`, { headers: admin.headers });
    expect(r.json().app.iCurBuild).toBe(1);
    expect((r.json().app.builds as any[]).map((b) => b.buildId).sort()).toEqual([1, 3]);
    expect(await release(t, org.name, app.name)).toMatchObject({ buildId: 1 });
    await setLive(app, 3);
    expect(await release(t, org.name, app.name)).toMatchObject({ buildId: 3, patches: [{ fromBuildId: 1 }] });
  }, 120_000);

  it('a live push after a staged one: the staged build stays kept, its patches are dropped after the grace period', async () => {
    const { app, origin } = await appWithOrigin();
    await push(app, 1);
    await push(app, 2, false);
    await push(app, 3);
    expect(await release(t, org.name, app.name)).toMatchObject({ buildId: 3, patches: [{ fromBuildId: 2 }, { fromBuildId: 1 }] });
    t.clock.advance(61_000);
    t.server.worker?.poke();
    const stalePatch = depotFile(t, `pat/${org.name}/${app.name}/0002/0001/patch.json`);
    const staleOnOrigin = path.join(origin, 'pat', org.name, app.name, '0002', '0001', 'patch.json');
    for (let i = 0; i < 1000 && (fs.existsSync(stalePatch) || fs.existsSync(staleOnOrigin)); i++) await new Promise((r) => setTimeout(r, 20));
    expect(fs.existsSync(stalePatch)).toBe(false);
    expect(fs.existsSync(staleOnOrigin)).toBe(false);
    expect(fs.existsSync(depotFile(t, `dxf/${org.name}/${app.name}/0002/b0002-t000/image.json`))).toBe(true);
    expect(fs.existsSync(depotFile(t, `pat/${org.name}/${app.name}/0003/0002/patch.json`))).toBe(true);
    // The staged build can still be made live (a rollback: no patches lead to it any more).
    await setLive(app, 2);
    expect(fsRelease(origin, org.name, app.name)).toMatchObject({ buildId: 2, patches: [] });
  }, 120_000);

  it('announces a set-live to subscriptions as a deploy: submit, begin, end, with the build name', async () => {
    const { app } = await appWithOrigin();
    await push(app, 1);
    await push(app, 2, false);
    const received: any[] = [];
    const hook = await startHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.end('ok');
      });
    });
    try {
      const sub = await t.req('POST', '/be/v1/subscriptions', { headers: admin.headers, body: { name: uniqueName('hook'), type: 'webhook', url: hook.baseUrl + '/events', events: ['deploy.submit', 'deploy.begin', 'deploy.end', 'deploy.error'] } });
      expect(sub.statusCode, sub.body).toBe(201);
      const answer = await setLive(app, 2);
      const mine = () => received.filter((e) => e.appName === app.name && e.taskName === answer.task.name);
      for (let i = 0; i < 1000 && mine().length < 3; i++) await new Promise((r) => setTimeout(r, 20));
      expect(mine().map((e) => `${e.type}.${e.event}`)).toEqual(['deploy.submit', 'deploy.begin', 'deploy.end']);
      for (const e of mine()) expect(e).toMatchObject({ orgName: org.name, buildName: 'v2' });
      expect(mine()[2]).toMatchObject({ dxfName: 'b0002-t000' });
    } finally {
      await hook.close();
    }
  }, 120_000);

  it('PATCH iCurBuild: 400 invalid-param for a build that is not kept or a wrong type, 409 app-locked while processing', async () => {
    const { app } = await appWithOrigin();
    await push(app, 1);
    for (const bad of [7, 0, '1', 1.5, true]) {
      const r = await t.req('PATCH', '/be/v1/apps', { headers: admin.headers, body: { name: app.name, iCurBuild: bad } });
      expect(r.statusCode, `${JSON.stringify(bad)} ${r.body}`).toBe(400);
      expect(r.json()).toMatchObject({ status: 'error', error: 'invalid-param', param: 'iCurBuild' });
    }
    // An upload waiting for its PUT keeps the app processing.
    const waiting = await t.req('POST', '/be/v1/builds', { headers: admin.headers, body: { appName: app.name } });
    expect(waiting.statusCode).toBe(202);
    const locked = await t.req('PATCH', '/be/v1/apps', { headers: admin.headers, body: { name: app.name, iCurBuild: 1 } });
    expect(locked.statusCode).toBe(409);
    expect(locked.json()).toMatchObject({ status: 'error', error: 'app-locked' });
    const live = await t.req('POST', '/be/v1/builds', { headers: admin.headers, body: { appName: app.name, live: 'no' } });
    expect(live.json()).toMatchObject({ error: 'invalid-param', param: 'live' });
  }, 60_000);

  it('needs apps.update, and another org\'s app is not-found', async () => {
    const { app } = await appWithOrigin();
    await push(app, 1);
    const reader = await createUser(t, org, admin.headers, [await createRole(t, admin.headers, { apps: 2 })]);
    const r = await t.req('PATCH', '/be/v1/apps', { headers: reader.headers, body: { name: app.name, iCurBuild: 1 } });
    expect(r.statusCode).toBe(403);
    expect(r.json()).toMatchObject({ error: 'forbidden', permission: 'apps.update' });
    const other = await createOrg(t);
    const otherAdmin = await loginAdmin(t, other);
    const cross = await t.req('PATCH', '/be/v1/apps', { headers: otherAdmin.headers, body: { name: app.name, iCurBuild: 1 } });
    expect(cross.statusCode).toBe(404);
    expect(cross.json()).toMatchObject({ error: 'not-found' });
    const tasks = await t.req('GET', `/be/v1/tasks?appName=${app.name}&type=deploy&limit=100`, { headers: admin.headers });
    expect((tasks.json().tasks as any[]).length).toBe(1);
  }, 60_000);

  it('app names may hold "-" (my-game), published under that name; old names stay valid; the rule is given in words', async () => {
    const h = admin.headers;
    const name = `my-game-${process.pid}`;
    const created = await t.req('POST', '/be/v1/apps', { headers: h, body: { name, label: 'My Game' } });
    expect(created.statusCode, created.body).toBe(201);
    const row = await findApp(t.server.db.db, (await findOrgByName(t.server.db.db, org.name))!.id, name);
    const r = await upload(t, h, name, await gameTar(1));
    expect(r.put.statusCode, r.put.body).toBe(200);
    await settle(t, h, name);
    expect(await release(t, org.name, name)).toMatchObject({ appName: name, buildId: 1 });
    expect((await t.req('GET', `/be/v1/apps/${name}`, { headers: h })).json().app.iCurBuild).toBe(1);
    expect((await t.req('PATCH', '/be/v1/apps', { headers: h, body: { name, iCurBuild: 1 } })).statusCode).toBe(200);
    await settle(t, h, name);
    expect(row).toBeDefined();
    for (const ok of [uniqueName('a_b'), `AB${process.pid}`, `x-${process.pid}_y-z`]) {
      expect((await t.req('POST', '/be/v1/apps', { headers: h, body: { name: ok, label: 'x' } })).statusCode, ok).toBe(201);
    }
    for (const bad of ['-game', 'a', 'a.b', 'a/b', 'a b', 'x'.repeat(51), 'ü-game']) {
      const res = await t.req('POST', '/be/v1/apps', { headers: h, body: { name: bad, label: 'x' } });
      expect(res.statusCode, bad).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid-param', param: 'name', message: 'name must be an app name: 2 to 50 characters: letters A-Z a-z, digits, _ and - (not first)' });
    }
    // Other names keep the old rule.
    const role = await t.req('POST', '/be/v1/roles', { headers: h, body: { name: 'pub-lisher', permissions: {} } });
    expect(role.json()).toMatchObject({ error: 'invalid-param', param: 'name', message: 'name must be a name: 2 to 50 characters: letters A-Z a-z, digits and _' });
  }, 60_000);
});
