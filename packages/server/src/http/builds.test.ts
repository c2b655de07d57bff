import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findApp, setAppDeployments } from '../db/repositories/app.repository.js';
import { insertDeployment, updateDeployment } from '../db/repositories/deployment.repository.js';
import { makeTar, pseudoRandomBytes, sha256Hex, startHttpServer, unusedPort, type TestHttpServer } from '../pipeline/test-support/fixtures.js';
import { createOrg, loginAdmin, uniqueName, type OrgFixture, type Session } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';
import { PIPELINE, createApp, depotFile, env, fsDeployment, gameTar, settle, task, upload } from '../test-support/imports.js';

describe.each(TEST_DIALECTS)('imports end to end (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let admin: Session;
  let http: TestHttpServer;
  const served = new Map<string, Buffer>();

  beforeAll(async () => {
    t = await createTestServer({ dialect, env });
    org = await createOrg(t);
    admin = await loginAdmin(t, org);
    http = await startHttpServer((req, res) => {
      const body = served.get(req.url ?? '');
      if (!body) {
        res.statusCode = 404;
        res.end('no');
        return;
      }
      res.setHeader('content-length', body.length);
      res.end(body);
    });
  });
  afterAll(async () => {
    await http?.close();
    await t?.close();
  });

  it('imports by upload and by URL, publishes patches, serves /cdn with Range, rotates past maxBuilds', async () => {
    const h = admin.headers;
    const app = await createApp(t, org, 2);

    // 1. upload
    const first = await upload(t, h, app.name, await gameTar(1), { buildName: '1.0.0' });
    expect(first.submitted.type).toBe('dltar');
    expect(first.up.method).toBe('PUT');
    expect(first.put.statusCode, first.put.body).toBe(200);
    let tasks = await settle(t, h, app.name);
    expect(tasks.filter((x) => PIPELINE.includes(x.type)).map((x) => [x.type, x.status])).toEqual([['dltar', 'succeeded'], ['mkraw', 'succeeded'], ['deploy', 'succeeded']]);
    expect(tasks.find((x) => x.type === 'mkraw').buildId).toBe(1);
    // A token works once.
    const again = await t.app.inject({ method: 'PUT', url: new URL(first.up.url).pathname + new URL(first.up.url).search, payload: Buffer.alloc(10) });
    expect(again.json().error).toBe('invalid-state');

    const relUrl = `/cdn/dxf/${org.name}/${app.name}/release.json`;
    let rel = await t.app.inject({ method: 'GET', url: relUrl });
    expect(rel.statusCode).toBe(200);
    expect(rel.json()).toMatchObject({ buildId: 1, buildName: '1.0.0', dxfName: 'b0001-t000', patches: [] });
    const etag = rel.headers.etag as string;
    expect((await t.app.inject({ method: 'GET', url: relUrl, headers: { 'if-none-match': etag } })).statusCode).toBe(304);

    // Range reads of the image's manifest.
    const manifestRel = `${rel.json().image.path}${rel.json().image.manifest}`;
    const bytes = fs.readFileSync(depotFile(t, manifestRel));
    const part = await t.app.inject({ method: 'GET', url: `/cdn/${manifestRel}`, headers: { range: 'bytes=4-13' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 4-13/${bytes.length}`);
    expect(part.rawPayload.equals(bytes.subarray(4, 14))).toBe(true);
    const suffix = await t.app.inject({ method: 'GET', url: `/cdn/${manifestRel}`, headers: { range: 'bytes=-5' } });
    expect(suffix.rawPayload.equals(bytes.subarray(bytes.length - 5))).toBe(true);
    const outside = await t.app.inject({ method: 'GET', url: `/cdn/${manifestRel}`, headers: { range: `bytes=${bytes.length}-` } });
    expect(outside.statusCode).toBe(416);
    expect(outside.headers['content-range']).toBe(`bytes */${bytes.length}`);
    const head = await t.app.inject({ method: 'HEAD', url: `/cdn/${manifestRel}` });
    expect(head.statusCode).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(bytes.length);
    expect((await t.app.inject({ method: 'GET', url: `/cdn/dxf/${org.name}/${app.name}/nope.bin` })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: `/cdn/imports/x` })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: `/cdn/dxf/../imports/x` })).statusCode).toBe(404);

    // 2. by URL (with size and sha256): patches from build 1.
    const tar2 = await gameTar(2);
    served.set('/b2.tar', tar2);
    const r2 = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName: app.name, url: `${http.baseUrl}/b2.tar`, size: tar2.length, sha256: sha256Hex(tar2) } });
    expect(r2.statusCode, r2.body).toBe(202);
    expect(r2.json().upload).toBeUndefined();
    await settle(t, h, app.name);
    expect((await task(t, h, r2.json().task.name)).status).toBe('succeeded');
    rel = await t.app.inject({ method: 'GET', url: relUrl });
    expect(rel.json()).toMatchObject({ buildId: 2, buildName: '2', patches: [{ fromBuildId: 1, toBuildId: 2 }] });
    expect(rel.headers.etag).not.toBe(etag);

    // 3. third build with maxBuilds 2: build 1 and its patches leave.
    served.set('/b3.tar', await gameTar(3));
    const r3 = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName: app.name, url: `${http.baseUrl}/b3.tar` } });
    expect(r3.statusCode, r3.body).toBe(202);
    tasks = await settle(t, h, app.name);
    rel = await t.app.inject({ method: 'GET', url: relUrl });
    expect(rel.json()).toMatchObject({ buildId: 3, patches: [{ fromBuildId: 2, toBuildId: 3 }] });
    const row = await findApp(t.server.db.db, app.org_id, app.name);
    expect(row).toMatchObject({ i_cur_build: 3, dxf_name: 'b0003-t000', processing: 0, locked: 0, error: null });
    const builds = await t.server.db.db.selectFrom('builds' as any).select(['build_id' as any]).where('app_id' as any, '=', app.id).orderBy('build_id' as any).execute();
    expect(builds.map((b: any) => Number(b.build_id))).toEqual([2, 3]);
    const patches = await t.server.db.db.selectFrom('patches' as any).selectAll().where('app_id' as any, '=', app.id).execute();
    expect(patches.map((p: any) => [Number(p.from_build_id), Number(p.to_build_id)])).toEqual([[2, 3]]);

    // The grace period keeps build 1's image in the depot until the cleanup runs.
    const b1 = depotFile(t, `dxf/${org.name}/${app.name}/0001/`);
    expect(fs.existsSync(b1)).toBe(true);
    const cleanups = tasks.filter((x) => x.type === 'cleanup');
    expect(cleanups.length).toBeGreaterThan(0);
    expect(cleanups.every((x) => x.status === 'submitted')).toBe(true);
    t.clock.advance(61_000);
    t.server.worker?.poke();
    const oldPatch = depotFile(t, `pat/${org.name}/${app.name}/0002/0001/patch.json`);
    const oldImage = path.join(b1, 'b0001-t000', 'image.json');
    expect(fs.existsSync(oldPatch)).toBe(true);
    for (let i = 0; i < 1000 && (fs.existsSync(oldImage) || fs.existsSync(oldPatch)); i++) await new Promise((r) => setTimeout(r, 20));
    expect(fs.existsSync(oldImage)).toBe(false);
    expect(fs.existsSync(oldPatch)).toBe(false);
    expect(fs.existsSync(depotFile(t, `pat/${org.name}/${app.name}/0003/0002/patch.json`))).toBe(true);
    expect((await t.app.inject({ method: 'GET', url: relUrl })).statusCode).toBe(200);
  }, 120_000);

  it('announces each pipeline phase to subscriptions, in order, with the next task named in results', async () => {
    const h = admin.headers;
    const app = await createApp(t, org, 2);
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
      const sub = await t.req('POST', '/be/v1/subscriptions', { headers: h, body: { name: uniqueName('hook'), type: 'webhook', url: hook.baseUrl + '/events' } });
      expect(sub.statusCode, sub.body).toBe(201);
      const { submitted } = await upload(t, h, app.name, await gameTar(7), { buildName: 'ev-1' });
      const tasks = (await settle(t, h, app.name)).filter((x) => PIPELINE.includes(x.type));
      expect(tasks.map((x) => x.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
      const [dltar, mkraw, deploy] = tasks;
      expect(dltar.name).toBe(submitted.name);
      expect(dltar.result.nextTask).toBe(mkraw.name);
      expect(mkraw.result.nextTask).toBe(deploy.name);
      const expected = ['dltar.submit', 'dltar.begin', 'dltar.end', 'mkraw.begin', 'mkraw.end', 'deploy.begin', 'deploy.end'];
      for (let i = 0; i < 1000 && received.filter((e) => e.appName === app.name).length < expected.length; i++) await new Promise((r) => setTimeout(r, 20));
      const mine = received.filter((e) => e.appName === app.name);
      expect(mine.map((e) => `${e.type}.${e.event}`)).toEqual(expected);
      expect(mine[0]).toMatchObject({ orgName: org.name, appName: app.name, taskName: dltar.name, buildName: 'ev-1' });
      expect(mine.at(-1)).toMatchObject({ taskName: deploy.name, dxfName: 'b0001-t000' });
    } finally {
      await hook.close();
    }
  });

  it('refuses s3:// URLs at POST without an S3 blob store (400 invalid-param url, nothing enqueued)', async () => {
    const app = await createApp(t, org);
    const before = (await t.req('GET', '/be/v1/tasks', { headers: admin.headers })).json().total as number;
    expect(typeof before).toBe('number');
    const messages = new Set<string>();
    for (const url of ['s3://bucket/incoming/x.tar', `s3://blobs/incoming/${org.name}/v1.tar`, 'S3://bucket/k']) {
      const r = await t.req('POST', '/be/v1/builds', { headers: admin.headers, body: { appName: app.name, url } });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json()).toMatchObject({ status: 'error', error: 'invalid-param', param: 'url' });
      messages.add(r.json().message);
    }
    expect(messages.size).toBe(1);
    expect((await t.req('GET', '/be/v1/tasks', { headers: admin.headers })).json().total).toBe(before);
  });

  it('reports bad input on the task: exitCode, httpStatus, size/sha256 mismatch, not a tar, escaping tar', async () => {
    const h = admin.headers;
    const app = await createApp(t, org);
    const tar = await gameTar(1);
    served.set('/ok.tar', tar);
    const port = await unusedPort();
    const submit = async (body: Record<string, unknown>) => {
      const r = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName: app.name, ...body } });
      expect(r.statusCode, r.body).toBe(202);
      return r.json().task.name as string;
    };
    const refused = await submit({ url: `http://127.0.0.1:${port}/x.tar` });
    const missing = await submit({ url: `${http.baseUrl}/missing.tar` });
    const wrongSize = await submit({ url: `${http.baseUrl}/ok.tar`, size: tar.length + 1 });
    const wrongSha = await submit({ url: `${http.baseUrl}/ok.tar`, sha256: 'ab'.repeat(32) });
    const notTar = await upload(t, h, app.name, pseudoRandomBytes(5000, 3));
    expect(notTar.put.statusCode).toBe(200);
    const escaping = await upload(t, h, app.name, await makeTar([{ name: 'game/../../etc/passwd', content: 'x' }]));
    await settle(t, h, app.name);

    expect((await task(t, h, refused)).error).toMatchObject({ code: 'download-failed', exitCode: 7 });
    expect((await task(t, h, missing)).error).toMatchObject({ code: 'download-failed', httpStatus: 404, exitCode: 22 });
    expect((await task(t, h, wrongSize)).error).toMatchObject({ code: 'size-mismatch', sizeBytesActual: tar.length, sizeBytesExpected: tar.length + 1 });
    expect((await task(t, h, wrongSha)).error).toMatchObject({ code: 'sha256-mismatch' });
    expect((await task(t, h, notTar.submitted.name)).error).toMatchObject({ code: 'not-a-tar', fileReadFailed: { typeExpected: expect.any(String) } });
    expect((await task(t, h, escaping.submitted.name)).status).toBe('succeeded');
    const tasks = await settle(t, h, app.name);
    const mkraw = tasks.find((x) => x.type === 'mkraw');
    expect(mkraw.status).toBe('failed');
    expect(mkraw.error).toMatchObject({ code: 'file-read-failed', fileReadFailed: { filename: 'game/../../etc/passwd' } });
    const row = await findApp(t.server.db.db, app.org_id, app.name);
    expect(row).toMatchObject({ i_cur_build: null, processing: 0, locked: 0 });
    expect((await t.app.inject({ method: 'GET', url: `/cdn/dxf/${org.name}/${app.name}/release.json` })).statusCode).toBe(404);

    // Once the file is there, retrying the failed download runs the whole import.
    served.set('/missing.tar', tar);
    const retry = await t.req('POST', '/be/v1/trigger', { headers: h, body: { type: 'retry', taskName: missing } });
    expect(retry.statusCode, retry.body).toBe(202);
    expect(retry.json().task).toMatchObject({ status: 'submitted', error: null, attempts: 0 });
    await settle(t, h, app.name);
    expect((await task(t, h, missing)).status).toBe('succeeded');
    const rel = await t.app.inject({ method: 'GET', url: `/cdn/dxf/${org.name}/${app.name}/release.json` });
    expect(rel.json()).toMatchObject({ buildId: 2, patches: [] });
  }, 60_000);

  it('uploads: too large → 413, cut off → stays open, expire by PATCH, expire at the deadline, bad token → 404', async () => {
    const h = admin.headers;
    const app = await createApp(t, org);
    const r = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName: app.name } });
    const { task: tk, upload: up } = r.json();
    const url = new URL(up.url);
    const put = (payload: Buffer, headers: Record<string, string> = {}, search = url.search) =>
      t.app.inject({ method: 'PUT', url: url.pathname + search, headers: { 'content-type': 'application/octet-stream', ...headers }, payload });

    expect((await put(Buffer.alloc(300 * 1024))).statusCode).toBe(413);
    // A body shorter than its Content-Length (the client broke off): nothing is kept, the upload stays open.
    const cut = await put(Buffer.alloc(1000), { 'content-length': '2000' }).catch((e: Error) => e);
    if (!(cut instanceof Error)) expect(cut.json()).toMatchObject({ error: 'invalid-param', param: 'body' });
    expect((await put(Buffer.alloc(10), {}, '?token=rkup_wrong')).json().error).toBe('not-found');
    expect((await put(Buffer.alloc(10), {}, '')).json().error).toBe('missing-param');
    expect((await task(t, h, tk.name)).status).toBe('submitted');

    // PATCH expire ends it; the URL stops working; expiring again is invalid-state.
    const ex = await t.req('PATCH', '/be/v1/tasks', { headers: h, body: { name: tk.name, expire: true } });
    expect(ex.statusCode, ex.body).toBe(200);
    expect(ex.json().task.status).toBe('expired');
    expect((await put(await gameTar(1))).json().error).toBe('invalid-state');
    expect((await t.req('PATCH', '/be/v1/tasks', { headers: h, body: { name: tk.name, expire: true } })).json().error).toBe('invalid-state');

    // Never uploaded: at the deadline the worker ends it `expired`.
    const late = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName: app.name } });
    const lateName = late.json().task.name as string;
    t.clock.advance(601_000);
    t.server.worker?.poke();
    await settle(t, h, app.name);
    const lt = await task(t, h, lateName);
    expect(lt.status).toBe('expired');
    const lu = new URL(late.json().upload.url);
    expect((await t.app.inject({ method: 'PUT', url: lu.pathname + lu.search, payload: Buffer.alloc(10) })).statusCode).toBeGreaterThanOrEqual(400);
    expect((await findApp(t.server.db.db, app.org_id, app.name))?.processing).toBe(0);
  }, 60_000);

  it('locks the app after a failing deploy; retry after the fix publishes and unlocks', async () => {
    const h = admin.headers;
    const app = await createApp(t, org);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-p2-dep-'));
    try {
      const blocker = path.join(dir, 'file');
      fs.writeFileSync(blocker, 'not a folder');
      const dep = fsDeployment(app.org_id, path.join(blocker, 'sub'), t.clock.now());
      await insertDeployment(t.server.db.db, dep);
      await setAppDeployments(t.server.db.db, app.id, [dep.id]);

      const first = await upload(t, h, app.name, await gameTar(1));
      expect(first.put.statusCode).toBe(200);
      const tasks = await settle(t, h, app.name);
      const deploy = tasks.find((x) => x.type === 'deploy');
      expect(deploy.status).toBe('failed');
      expect(deploy.error).toMatchObject({ code: 'deploy-failed', deployment: dep.name });
      const locked = await findApp(t.server.db.db, app.org_id, app.name);
      expect(locked).toMatchObject({ locked: 1, processing: 0 });
      expect(JSON.parse(locked!.error!)).toMatchObject({ task: deploy.name, type: 'deploy', message: expect.any(String), since: expect.any(Number) });

      const refused = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName: app.name } });
      expect(refused.statusCode).toBe(409);
      expect(refused.json()).toMatchObject({ error: 'app-locked', task: deploy.name });

      // Retry before the fix fails again; after it, it publishes and clears the error.
      const published = path.join(dir, 'origin');
      fs.mkdirSync(published);
      await updateDeployment(t.server.db.db, dep.id, { fs_path: published });
      const retry = await t.req('POST', '/be/v1/trigger', { headers: h, body: { type: 'retry', taskName: deploy.name } });
      expect(retry.statusCode, retry.body).toBe(202);
      await settle(t, h, app.name);
      expect((await task(t, h, deploy.name)).status).toBe('succeeded');
      expect(await findApp(t.server.db.db, app.org_id, app.name)).toMatchObject({ locked: 0, error: null, i_cur_build: 1 });
      expect(fs.existsSync(path.join(published, 'dxf', org.name, app.name, 'release.json'))).toBe(true);
      expect((await t.req('POST', '/be/v1/trigger', { headers: h, body: { type: 'retry', taskName: deploy.name } })).json().error).toBe('invalid-state');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('deleting an org with prune removes its published files from the depot', async () => {
    const other = await createOrg(t);
    const oh = (await loginAdmin(t, other)).headers;
    const app = await createApp(t, other);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-p2-prune-'));
    try {
      await insertDeployment(t.server.db.db, fsDeployment(app.org_id, dir, t.clock.now()));
      const up = await upload(t, oh, app.name, await gameTar(1));
      expect(up.put.statusCode).toBe(200);
      await settle(t, oh, app.name);
      const release = depotFile(t, `dxf/${other.name}/${app.name}/release.json`);
      const published = path.join(dir, 'dxf', other.name, app.name, 'release.json');
      expect(fs.existsSync(release)).toBe(true);
      expect(fs.existsSync(published)).toBe(true);
      const del = await t.req('DELETE', `/adm/v1/orgs/${other.name}?prune=true`, { headers: t.admin });
      expect(del.statusCode, del.body).toBe(200);
      expect(fs.existsSync(release)).toBe(false);
      expect(fs.existsSync(published)).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(fs.existsSync(depotFile(t, `dxf/${other.name}/${app.name}/0001/b0001-t000/image.json`))).toBe(false);
    expect((await t.app.inject({ method: 'GET', url: `/cdn/dxf/${other.name}/${app.name}/release.json` })).statusCode).toBe(404);
  }, 60_000);

  it('tasks PATCH/trigger rules and another org\'s credentials', async () => {
    const h = admin.headers;
    const app = await createApp(t, org);
    const r = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName: app.name } });
    const name = r.json().task.name as string;
    const ack = await t.req('PATCH', '/be/v1/tasks', { headers: h, body: { name, acknowledge: true } });
    expect(ack.statusCode, ack.body).toBe(200);
    expect((await t.req('PATCH', '/be/v1/tasks', { headers: h, body: { name } })).json().error).toBe('invalid-param');
    expect((await t.req('POST', '/be/v1/trigger', { headers: h, body: { type: 'traces', appName: app.name } })).json()).toMatchObject({ error: 'invalid-state' });
    expect((await t.req('POST', '/be/v1/trigger', { headers: h, body: { type: 'retry' } })).json()).toMatchObject({ error: 'missing-param', param: 'taskName' });
    expect((await t.req('POST', '/be/v1/trigger', { headers: h, body: { type: 'retry', taskName: name } })).json().error).toBe('invalid-state');
    expect((await t.req('POST', '/be/v1/builds', { headers: h, body: { appName: 'no_such_app' } })).json().error).toBe('not-found');
    expect((await t.req('POST', '/be/v1/builds', { headers: h, body: { appName: app.name, url: 'ftp://x/y.tar' } })).json()).toMatchObject({ error: 'invalid-param', param: 'url' });
    expect((await t.req('POST', '/be/v1/builds', { headers: h, body: { appName: app.name, extra: 1 } })).json().error).toBe('invalid-param');

    const other = await createOrg(t);
    const oh = (await loginAdmin(t, other)).headers;
    expect((await t.req('POST', '/be/v1/builds', { headers: oh, body: { appName: app.name } })).json().error).toBe('not-found');
    expect((await t.req('GET', `/be/v1/tasks/${name}`, { headers: oh })).statusCode).toBe(404);
    expect((await t.req('PATCH', '/be/v1/tasks', { headers: oh, body: { name, expire: true } })).json().error).toBe('not-found');
    expect((await t.req('POST', '/be/v1/trigger', { headers: oh, body: { type: 'retry', taskName: name } })).json().error).toBe('not-found');
    expect((await t.req('POST', '/be/v1/builds', { body: { appName: app.name } })).statusCode).toBe(401);
    const ex = await t.req('PATCH', '/be/v1/tasks', { headers: h, body: { name, expire: true } });
    expect(ex.json().task.status).toBe('expired');
  }, 30_000);
});
