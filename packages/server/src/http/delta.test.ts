// Delta pushes (issue 13 item 4): POST /be/v1/builds/chunks and `delta: true` imports, through the real
// routes and pipeline on both dialects: success (the same image as a full push), every error path,
// cross-org, permissions and hostile input.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packTar, planChunkIds, scanBuild, writeDelta, type TarWriteEntry } from '@rockit/engine';
import { pseudoRandomBytes } from '../pipeline/test-support/fixtures.js';
import { createMachineUser, createOrg, createRole, createUser, loginAdmin, type OrgFixture, type Session } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';
import { PIPELINE, createApp, depotFile, env, settle, task } from '../test-support/imports.js';

/** A build folder on disk; `variant` rewrites part of one file (most chunks stay the same). */
function writeBuild(dir: string, variant: number): TarWriteEntry[] {
  fs.mkdirSync(path.join(dir, 'game'), { recursive: true });
  const data = pseudoRandomBytes(160_000, 7);
  const level = pseudoRandomBytes(60_000, 8);
  if (variant > 1) pseudoRandomBytes(2_000, 100 + variant).copy(level, 20_000);
  fs.writeFileSync(path.join(dir, 'game', 'data.bin'), data);
  fs.writeFileSync(path.join(dir, 'game', 'level.bin'), level);
  fs.writeFileSync(path.join(dir, 'game', 'readme.txt'), `build ${variant}\n`);
  const file = (name: string): TarWriteEntry => ({ name, type: 'file', source: path.join(dir, name), size: fs.statSync(path.join(dir, name)).size, mode: 0o644, mtime: 1_700_000_000 });
  return [{ name: 'game', type: 'directory', source: '', size: 0, mode: 0o755, mtime: 1_700_000_000 }, file('game/data.bin'), file('game/level.bin'), file('game/readme.txt')];
}

async function tarOf(entries: TarWriteEntry[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of packTar(entries)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe.each(TEST_DIALECTS)('delta push (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let other: OrgFixture;
  let admin: Session;
  let otherAdmin: Session;
  let tmp: string;

  beforeAll(async () => {
    t = await createTestServer({ dialect, env: { ...env, ROCKIT_MAX_UPLOAD_BYTES: String(1024 * 1024) } });
    org = await createOrg(t);
    other = await createOrg(t);
    admin = await loginAdmin(t, org);
    otherAdmin = await loginAdmin(t, other);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-delta-'));
  });
  afterAll(async () => {
    await t?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const putUrl = (url: string): string => new URL(url).pathname + new URL(url).search;

  async function push(h: Record<string, string>, appName: string, body: Buffer, extra: Record<string, unknown> = {}): Promise<{ name: string }> {
    const r = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName, ...extra } });
    expect(r.statusCode, r.body).toBe(202);
    const put = await t.app.inject({ method: 'PUT', url: putUrl(r.json().upload.url), headers: { 'content-type': 'application/octet-stream' }, payload: body });
    expect(put.statusCode, put.body).toBe(200);
    return r.json().task;
  }

  async function makeDeltaFile(entries: TarWriteEntry[], known: Set<string>, name: string): Promise<{ bytes: Buffer; ids: string[]; literalRawBytes: number }> {
    const plan = await scanBuild(entries);
    const out = path.join(tmp, name);
    const res = await writeDelta(plan, known, out);
    return { bytes: fs.readFileSync(out), ids: planChunkIds(plan), literalRawBytes: res.literalRawBytes };
  }

  async function askChunks(h: Record<string, string>, appName: string, ids: string[]): Promise<string[]> {
    const r = await t.req('POST', '/be/v1/builds/chunks', { headers: h, body: { appName, ids } });
    expect(r.statusCode, r.body).toBe(200);
    return r.json().known;
  }

  async function manifestOf(appName: string, orgName = org.name): Promise<Buffer> {
    const rel = (await t.app.inject({ method: 'GET', url: `/cdn/dxf/${orgName}/${appName}/release.json` })).json();
    return fs.readFileSync(depotFile(t, `${rel.image.path}${rel.image.manifest}`));
  }

  it('sends only the missing chunks and publishes the same image as a full push', async () => {
    const h = admin.headers;
    const app = await createApp(t, org, 3);
    const v1 = writeBuild(path.join(tmp, 'v1'), 1);
    await push(h, app.name, await tarOf(v1));
    await settle(t, h, app.name);

    const v2 = writeBuild(path.join(tmp, 'v2'), 2);
    const plan = await scanBuild(v2);
    const ids = planChunkIds(plan);
    const known = await askChunks(h, app.name, ids);
    expect(known.length).toBeGreaterThan(0);
    expect(known.length).toBeLessThan(ids.length);
    expect(known.every((id) => ids.includes(id))).toBe(true);
    const out = path.join(tmp, 'v2.rkdl');
    const res = await writeDelta(plan, new Set(known), out);
    const delta = fs.readFileSync(out);
    expect(delta.length).toBeLessThan(plan.tarSizeBytes / 2);
    expect(res.literalRawBytes).toBeLessThan(plan.contentBytes / 2);

    const dl = await push(h, app.name, delta, { delta: true, buildName: '2.0' });
    const tasks = await settle(t, h, app.name);
    const mine = tasks.filter((x) => PIPELINE.includes(x.type)).slice(-3);
    expect(mine.map((x) => [x.type, x.status])).toEqual([['dltar', 'succeeded'], ['mkraw', 'succeeded'], ['deploy', 'succeeded']]);
    expect((await task(t, h, dl.name)).result).toMatchObject({ delta: true, sizeBytes: plan.tarSizeBytes });
    // The delta and the assembled tar are gone from the blob store.
    const imports = path.join(t.dataDir, 'blobs', 'imports');
    const left = fs.existsSync(imports) ? fs.readdirSync(imports, { recursive: true }).filter((f) => /\.(tar|rkdl)$/.test(String(f))) : [];
    expect(left).toEqual([]);

    // The same build pushed whole to another app: byte-identical manifest.
    const full = await createApp(t, org, 3);
    await push(h, full.name, await tarOf(v2));
    await settle(t, h, full.name);
    expect((await manifestOf(app.name)).equals(await manifestOf(full.name))).toBe(true);
    const rel = (await t.app.inject({ method: 'GET', url: `/cdn/dxf/${org.name}/${app.name}/release.json` })).json();
    expect(rel).toMatchObject({ buildId: 2, buildName: '2.0', patches: [{ fromBuildId: 1, toBuildId: 2 }] });
  });

  it('refuses a delta that is not one (not-a-delta) and one naming a chunk the app lacks (unknown-chunk)', async () => {
    const h = admin.headers;
    const app = await createApp(t, org, 3);
    const bad = await push(h, app.name, Buffer.from('this is not a delta at all, just text padding padding padding'), { delta: true });
    await settle(t, h, app.name);
    const failed = await task(t, h, bad.name);
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatchObject({ code: 'not-a-delta', retryable: false });

    const v = writeBuild(path.join(tmp, 'u1'), 1);
    const plan = await scanBuild(v);
    const out = path.join(tmp, 'u1.rkdl');
    await writeDelta(plan, new Set(planChunkIds(plan)), out); // claims the server has every chunk; it has none
    const unk = await push(h, app.name, fs.readFileSync(out), { delta: true });
    await settle(t, h, app.name);
    const t2 = await task(t, h, unk.name);
    expect(t2.status).toBe('failed');
    expect(t2.error).toMatchObject({ code: 'unknown-chunk', retryable: false });
    const appNow = (await t.req('GET', `/be/v1/apps/${app.name}`, { headers: h })).json().app;
    expect(appNow).toMatchObject({ processing: false, locked: false, iCurBuild: null });

    // A damaged delta (one byte flipped in a literal) fails its checksum.
    const lit = path.join(tmp, 'lit.rkdl');
    await writeDelta(plan, new Set(), lit);
    const damaged = fs.readFileSync(lit);
    damaged[damaged.length - 60] ^= 0xff;
    const dmg = await push(h, app.name, damaged, { delta: true });
    await settle(t, h, app.name);
    expect((await task(t, h, dmg.name)).error).toMatchObject({ code: 'not-a-delta' });
  });

  it('never knows or serves another org\'s chunks', async () => {
    const h = admin.headers;
    const app = await createApp(t, org, 3);
    const v1 = writeBuild(path.join(tmp, 'x1'), 1);
    await push(h, app.name, await tarOf(v1));
    await settle(t, h, app.name);
    const { ids } = await makeDeltaFile(v1, new Set(), 'x1.rkdl');
    expect((await askChunks(h, app.name, ids)).length).toBe(ids.length);

    // Another org: same app name is not found; its own app knows none of these ids.
    const oh = otherAdmin.headers;
    const r = await t.req('POST', '/be/v1/builds/chunks', { headers: oh, body: { appName: app.name, ids } });
    expect(r.statusCode).toBe(404);
    expect(r.json().error).toBe('not-found');
    const theirs = await createApp(t, other, 3);
    expect(await askChunks(oh, theirs.name, ids)).toEqual([]);
    // A delta in the other org naming org 1's chunks cannot be assembled from them.
    const { bytes } = await makeDeltaFile(v1, new Set(ids), 'x1-all.rkdl');
    const dl = await push(oh, theirs.name, bytes, { delta: true });
    await settle(t, oh, theirs.name);
    expect((await task(t, oh, dl.name)).error).toMatchObject({ code: 'unknown-chunk' });
  });

  it('needs apps.update; validates ids, sizes and combinations', async () => {
    const h = admin.headers;
    const app = await createApp(t, org, 3);
    const id = 'a'.repeat(64);
    const reader = await createUser(t, org, h, [await createRole(t, h, { apps: 2 })]);
    const r1 = await t.req('POST', '/be/v1/builds/chunks', { headers: reader.headers, body: { appName: app.name, ids: [id] } });
    expect(r1.statusCode).toBe(403);
    expect(r1.json()).toMatchObject({ error: 'forbidden', permission: 'apps.update' });
    const r1b = await t.req('POST', '/be/v1/builds', { headers: reader.headers, body: { appName: app.name, delta: true } });
    expect(r1b.statusCode).toBe(403);
    const ci = await createMachineUser(t, org, h, [await createRole(t, h, { apps: 6 })]);
    expect((await t.req('POST', '/be/v1/builds/chunks', { headers: ci.headers, body: { appName: app.name, ids: [id] } })).json()).toEqual({ status: 'success', known: [] });
    expect((await t.req('POST', '/be/v1/builds/chunks', { body: { appName: app.name, ids: [id] } })).statusCode).toBe(401);

    const bad = async (body: unknown, code: string, param?: string, status = 400) => {
      const r = await t.req('POST', '/be/v1/builds/chunks', { headers: h, body });
      expect(r.statusCode, r.body).toBe(status);
      expect(r.json().error).toBe(code);
      if (param) expect(r.json().param).toBe(param);
    };
    await bad({ appName: app.name }, 'missing-param', 'ids');
    await bad({ appName: app.name, ids: ['A'.repeat(64)] }, 'invalid-param');
    await bad({ appName: app.name, ids: ['../../etc/passwd'] }, 'invalid-param');
    await bad({ appName: app.name, ids: id }, 'invalid-param');
    await bad({ appName: app.name, ids: Array.from({ length: 10_001 }, () => id) }, 'invalid-param');
    await bad({ appName: app.name, ids: [id], extra: 1 }, 'invalid-param', 'extra');
    await bad({ appName: 'nope_app', ids: [id] }, 'not-found', undefined, 404);
    const huge = await t.app.inject({ method: 'POST', url: '/be/v1/builds/chunks', headers: { ...h, 'content-type': 'application/json' }, payload: JSON.stringify({ appName: app.name, ids: [id], pad: 'x'.repeat(1_100_000) }) });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error).toBe('payload-too-large');
    const text = await t.app.inject({ method: 'POST', url: '/be/v1/builds/chunks', headers: { ...h, 'content-type': 'text/plain' }, payload: 'ids' });
    expect(text.statusCode).toBe(415);
    // 10 000 ids is allowed.
    expect(await askChunks(h, app.name, Array.from({ length: 10_000 }, () => id))).toEqual([]);

    for (const body of [{ url: 'https://example.com/b.tar' }, { size: 10 }, { sha256: 'a'.repeat(64) }, { delta: 'yes' }]) {
      const r = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName: app.name, delta: true, ...body } });
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error).toBe('invalid-param');
    }
  });
});
