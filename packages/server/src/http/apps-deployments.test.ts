import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveInstallationKey } from '../config/installation-key.js';
import { findOrgByName } from '../db/repositories/org.repository.js';
import { findDeploymentsByNames, recordDeploymentStatus, recordPublication } from '../db/repositories/deployment.repository.js';
import { findApp, setAppDeployments } from '../db/repositories/app.repository.js';
import { SecretBox } from '../domain/secret-box.js';
import { deploymentSecretContext } from '../services/deployment.service.js';
import { createMachineUser, createOrg, createRole, createUser, loginAdmin, uniqueName, type OrgFixture, type Session } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

const S3_SECRET = 'very-secret-access-key-value-0123';
const DL_KEY = 'download-auth-key-value-abcdef0123';

const s3Body = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 's3',
  s3: { endpoint: 's3.eu-west-1.amazonaws.com', region: 'eu-west-1', bucket: 'my-cdn-bucket', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: S3_SECRET },
  downloadAuth: { type: 'token', key: DL_KEY },
  ...extra,
});

/** Writes a published file into an fs origin folder, as the deploy step would. */
function publishFile(root: string, key: string): string {
  const file = path.join(root, ...key.split('/'));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, 'x');
  return file;
}

describe.each(TEST_DIALECTS)('apps, deployments and consumption (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let other: OrgFixture;
  let admin: Session;
  let otherAdmin: Session;
  let originRoot: string;
  beforeAll(async () => {
    t = await createTestServer({ dialect, env: { ROCKIT_NO_WORKER: 'true', ROCKIT_ALLOW_PRIVATE_ADDRESSES: 'true' } });
    org = await createOrg(t);
    other = await createOrg(t);
    originRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-origins-'));
  });
  beforeEach(async () => {
    admin = await loginAdmin(t, org);
    otherAdmin = await loginAdmin(t, other);
  });
  afterAll(async () => {
    await t?.close();
    if (originRoot) fs.rmSync(originRoot, { recursive: true, force: true });
  });

  const req = (method: string, url: string, body?: unknown, headers = admin.headers) => t.req(method, url, { headers, body });
  const fsDeployment = async (name = uniqueName('fs'), headers = admin.headers) => {
    const folder = fs.mkdtempSync(path.join(originRoot, 'o-'));
    const r = await req('POST', '/be/v1/deployments', { name, type: 'fs', fs: { path: folder } }, headers);
    expect(r.statusCode, r.body).toBe(201);
    return { name, folder };
  };
  const db = () => t.server.db.db as any;
  const orgId = async (name: string) => (await findOrgByName(t.server.db.db, name))!.id;

  describe('deployments', () => {
    it.skipIf(dialect !== 'pg')('a delete racing an app update that names the deployment waits for it and answers in-use', async () => {
      const dep = await fsDeployment();
      const appName = uniqueName('race');
      expect((await req('POST', '/be/v1/apps', { name: appName, label: appName })).statusCode).toBe(201);
      const oid = await orgId(org.name);
      const app = await findApp(t.server.db.db, oid, appName);
      // An app update in flight: it has checked the deployment exists (share lock) and is about to commit.
      let commit!: () => void;
      const held = new Promise<void>((r) => (commit = r));
      let checked!: () => void;
      const didCheck = new Promise<void>((r) => (checked = r));
      const update = t.server.db.db.transaction().execute(async (trx) => {
        const found = await findDeploymentsByNames(trx, oid, [dep.name], t.server.db.capabilities);
        await setAppDeployments(trx, app!.id, found.map((d) => d.id));
        checked();
        await held;
      });
      await didCheck;
      const del = req('DELETE', `/be/v1/deployments/${dep.name}`);
      await new Promise((r) => setTimeout(r, 200));
      commit();
      await update;
      const answer = await del;
      expect(answer.statusCode, answer.body).toBe(409);
      expect(answer.json()).toMatchObject({ error: 'in-use', apps: [appName] });
      expect((await req('GET', `/be/v1/apps/${appName}`)).json().app.deployments).toEqual([dep.name]);
    });

    it('creates s3 and fs deployments; secrets are never answered and are sealed with the installation key', async () => {
      const name = uniqueName('cdn');
      const r = await req('POST', '/be/v1/deployments', s3Body(name, { label: 'EU CDN', originPrefix: '/games/' }));
      expect(r.statusCode, r.body).toBe(201);
      expect(r.json().deployment).toEqual({
        name, label: 'EU CDN', type: 's3', originPrefix: 'games',
        s3: { endpoint: 's3.eu-west-1.amazonaws.com', region: 'eu-west-1', bucket: 'my-cdn-bucket', accessKeyId: 'AKIDEXAMPLE', forcePathStyle: false },
        fs: null, downloadAuth: { type: 'token' }, status: 'ok', message: expect.stringContaining('not checked'), checked: null,
        created: Math.floor(t.clock.now() / 1000), updated: Math.floor(t.clock.now() / 1000),
      });
      const answers = [r, await req('GET', `/be/v1/deployments/${name}`), await req('GET', '/be/v1/deployments?limit=1000')];
      answers.push(await req('PATCH', '/be/v1/deployments', { name, label: 'x' }));
      for (const a of answers) {
        expect(a.statusCode).toBe(200 + (a === r ? 1 : 0));
        expect(a.body).not.toContain(S3_SECRET);
        expect(a.body).not.toContain(DL_KEY);
        expect(a.body).not.toContain('secretAccessKey');
        expect(a.body).not.toMatch(/"key"/);
      }
      const row = await db().selectFrom('deployments').selectAll().where('name', '=', name).executeTakeFirstOrThrow();
      expect(JSON.stringify(row)).not.toContain(S3_SECRET);
      expect(JSON.stringify(row)).not.toContain(DL_KEY);
      expect(row.s3_secret_sealed).toMatch(/^v1:/);
      const box = new SecretBox(resolveInstallationKey(t.server.config, () => {}));
      expect(box.decrypt(row.s3_secret_sealed, deploymentSecretContext(row.id, 's3.secretAccessKey'))).toBe(S3_SECRET);
      expect(box.decrypt(row.download_auth_key_sealed, deploymentSecretContext(row.id, 'downloadAuth.key'))).toBe(DL_KEY);
      expect(fs.statSync(path.join(t.dataDir, 'installation.key')).mode & 0o777).toBe(0o600);

      const f = await fsDeployment();
      const got = (await req('GET', `/be/v1/deployments/${f.name}`)).json().deployment;
      expect(got).toMatchObject({ name: f.name, label: f.name, type: 'fs', fs: { path: f.folder }, s3: null, downloadAuth: null, originPrefix: null });
    });

    it('refuses bad settings naming the field, taken names and unknown fields', async () => {
      const cases: Array<[unknown, string, string]> = [
        [{ name: 'd_x' }, 'missing-param', 'type'],
        [{ name: 'd_x', type: 'ftp' }, 'invalid-param', 'type'],
        [{ name: 'd_x', type: 's3' }, 'invalid-param', 's3'],
        [{ name: 'd_x', type: 'fs' }, 'invalid-param', 'fs'],
        [{ name: 'd_x', type: 'fs', fs: { path: 'relative/dir' } }, 'invalid-param', 'fs.path'],
        [{ name: 'd_x', type: 'fs', fs: { path: path.join(os.tmpdir(), 'x') }, s3: s3Body('y').s3 }, 'invalid-param', 's3'],
        [{ name: 'd_x', type: 'fs', fs: { path: path.join(t.dataDir, 'cdn') } }, 'invalid-param', 'fs.path'],
        [{ name: 'd_x', type: 'fs', fs: { path: '/tmp' }, originPrefix: '../up' }, 'invalid-param', 'originPrefix'],
        [{ ...s3Body('d_x'), s3: { ...s3Body('y').s3, bucket: 'Bad_Bucket' } }, 'invalid-param', 's3.bucket'],
        [{ ...s3Body('d_x'), s3: { ...s3Body('y').s3, endpoint: 'https://s3.amazonaws.com/bucket' } }, 'invalid-param', 's3.endpoint'],
        [{ ...s3Body('d_x'), s3: { endpoint: 'h', region: 'r', bucket: 'bkt', accessKeyId: 'a' } }, 'missing-param', 's3.secretAccessKey'],
        [{ ...s3Body('d_x'), s3: { ...s3Body('y').s3, forcePathStyle: 'true' } }, 'invalid-param', 's3.forcePathStyle'],
        [{ ...s3Body('d_x'), downloadAuth: { type: 'token', key: 'short' } }, 'invalid-param', 'downloadAuth.key'],
        [{ ...s3Body('d_x'), downloadAuth: { type: 'cookie', key: DL_KEY } }, 'invalid-param', 'downloadAuth.type'],
        [{ ...s3Body('d_x'), secret: 'x' }, 'invalid-param', 'secret'],
        [{ ...s3Body('bad name') }, 'invalid-param', 'name'],
      ];
      for (const [body, error, param] of cases) {
        const r = await req('POST', '/be/v1/deployments', body);
        expect(r.statusCode, JSON.stringify(body)).toBe(400);
        expect(r.json(), JSON.stringify(body)).toMatchObject({ error, param });
      }
      const f = await fsDeployment();
      const dup = await req('POST', '/be/v1/deployments', s3Body(f.name));
      expect(dup.statusCode).toBe(409);
      expect(dup.json()).toMatchObject({ error: 'already-exists', param: 'name' });
    });

    it('patches: s3 merges (the secret is kept), null removes optional fields, a type change needs the new settings', async () => {
      const name = uniqueName('cdn');
      await req('POST', '/be/v1/deployments', s3Body(name, { originPrefix: 'a/b' }));
      t.clock.advance(5000);
      const p = await req('PATCH', '/be/v1/deployments', { name, label: 'Renamed', s3: { bucket: 'other-bucket', forcePathStyle: true } });
      expect(p.statusCode, p.body).toBe(200);
      expect(p.json().deployment).toMatchObject({
        label: 'Renamed', originPrefix: 'a/b', s3: { bucket: 'other-bucket', forcePathStyle: true, accessKeyId: 'AKIDEXAMPLE' },
        downloadAuth: { type: 'token' }, updated: Math.floor(t.clock.now() / 1000),
      });
      const row = await db().selectFrom('deployments').selectAll().where('name', '=', name).executeTakeFirstOrThrow();
      const box = new SecretBox(resolveInstallationKey(t.server.config, () => {}));
      expect(box.decrypt(row.s3_secret_sealed, deploymentSecretContext(row.id, 's3.secretAccessKey'))).toBe(S3_SECRET);

      const cleared = await req('PATCH', '/be/v1/deployments', { name, label: null, originPrefix: null, downloadAuth: null });
      expect(cleared.json().deployment).toMatchObject({ label: name, originPrefix: null, downloadAuth: null });
      const row2 = await db().selectFrom('deployments').selectAll().where('name', '=', name).executeTakeFirstOrThrow();
      expect(row2.download_auth_key_sealed).toBeNull();

      expect((await req('PATCH', '/be/v1/deployments', { name, s3: null })).json()).toMatchObject({ error: 'invalid-param', param: 's3' });
      expect((await req('PATCH', '/be/v1/deployments', { name, type: 'fs' })).json()).toMatchObject({ error: 'invalid-param', param: 'fs' });
      expect((await req('PATCH', '/be/v1/deployments', { name, fs: { path: '/srv/www' } })).json()).toMatchObject({ error: 'invalid-param', param: 'fs' });
      expect((await req('PATCH', '/be/v1/deployments', { name, s3: { bucket: 'x' } })).json()).toMatchObject({ error: 'invalid-param', param: 's3.bucket' });
      const folder = fs.mkdtempSync(path.join(originRoot, 'o-'));
      const toFs = await req('PATCH', '/be/v1/deployments', { name, type: 'fs', fs: { path: folder } });
      expect(toFs.json().deployment).toMatchObject({ type: 'fs', fs: { path: folder }, s3: null });
      const row3 = await db().selectFrom('deployments').selectAll().where('name', '=', name).executeTakeFirstOrThrow();
      expect(row3.s3_secret_sealed).toBeNull();
      // Back to s3: the old secret is gone, so the whole s3 object is needed.
      expect((await req('PATCH', '/be/v1/deployments', { name, type: 's3', s3: { bucket: 'my-bucket' } })).json().error).toBe('invalid-param');
      expect((await req('PATCH', '/be/v1/deployments', { name: 'no_such_dep', label: 'x' })).statusCode).toBe(404);
      expect((await req('PATCH', '/be/v1/deployments', { label: 'x' })).json()).toMatchObject({ error: 'missing-param', param: 'name' });
    });

    it('lists with filters (name partial, error), projection and order', async () => {
      const tag = uniqueName('lst').toLowerCase();
      const a = await fsDeployment(`${tag}_a`);
      const b = await fsDeployment(`${tag}_b`);
      const id = (await db().selectFrom('deployments').select('id').where('name', '=', b.name).executeTakeFirstOrThrow()).id;
      await recordDeploymentStatus(t.server.db.db, id, 'error', 'publish failed: access denied', t.clock.now());
      const all = (await req('GET', `/be/v1/deployments?name=${tag.toUpperCase()}&order[]=-name`)).json();
      expect(all.total).toBe(2);
      expect(all.deployments.map((d: any) => d.name)).toEqual([b.name, a.name]);
      const errors = (await req('GET', `/be/v1/deployments?name=${tag}&error=true`)).json();
      expect(errors.deployments.map((d: any) => [d.name, d.status, d.message])).toEqual([[b.name, 'error', 'publish failed: access denied']]);
      expect((await req('GET', `/be/v1/deployments?name=${tag}&error=false`)).json().deployments.map((d: any) => d.name)).toEqual([a.name]);
      const projected = (await req('GET', `/be/v1/deployments?name=${tag}&fields[]=name,status&limit=1&offset=1`)).json();
      expect(projected).toMatchObject({ total: 2, offset: 1, limit: 1 });
      expect(projected.deployments).toEqual([{ name: b.name, status: 'error' }]);
      expect((await req('GET', '/be/v1/deployments?fields[]=secretAccessKey')).json()).toMatchObject({ error: 'invalid-param', param: 'fields[]' });
      expect((await req('GET', '/be/v1/deployments?error=maybe')).json()).toMatchObject({ error: 'invalid-param', param: 'error' });
    });

    it('refuses to delete a deployment an app names (409 in-use); deleting removes the org\'s published files there', async () => {
      const d = await fsDeployment();
      const appName = uniqueName('app');
      expect((await req('POST', '/be/v1/apps', { name: appName, label: 'A', deployments: [d.name] })).statusCode).toBe(201);
      const used = await req('DELETE', `/be/v1/deployments/${d.name}`);
      expect(used.statusCode).toBe(409);
      expect(used.json()).toMatchObject({ error: 'in-use', apps: [appName] });
      await req('PATCH', '/be/v1/apps', { name: appName, deployments: null });
      const mine = publishFile(d.folder, `dxf/${org.name}/${appName}/0001/b0001-t000/manifest.bin`);
      const patch = publishFile(d.folder, `pat/${org.name}/${appName}/0002/0001/patch.bin`);
      const foreign = publishFile(d.folder, `dxf/${other.name}/${appName}/release.json`);
      const del = await req('DELETE', `/be/v1/deployments/${d.name}`);
      expect(del.statusCode, del.body).toBe(200);
      expect(del.json()).toEqual({ status: 'success', cleanup: { ok: true, failures: [] } });
      expect(fs.existsSync(mine)).toBe(false);
      expect(fs.existsSync(patch)).toBe(false);
      expect(fs.existsSync(foreign)).toBe(true);
      expect((await req('GET', `/be/v1/deployments/${d.name}`)).statusCode).toBe(404);
      expect((await req('DELETE', `/be/v1/deployments/${d.name}`)).statusCode).toBe(404);
    });
  });

  describe('apps', () => {
    it('creates an app with the documented defaults', async () => {
      const name = uniqueName('game');
      const r = await req('POST', '/be/v1/apps', { name, label: 'Demo Game' });
      expect(r.statusCode, r.body).toBe(201);
      const now = Math.floor(t.clock.now() / 1000);
      expect(r.json().app).toEqual({
        name, label: 'Demo Game', maxBuilds: 5, iCurBuild: null, dxfName: null, builds: [], patches: [], deployments: [],
        processing: false, exporting: false, locked: false, error: null, sizeBytes: 0, created: now, updated: now,
      });
      expect((await req('GET', `/be/v1/apps/${name}`)).json().app).toEqual(r.json().app);
      const dup = await req('POST', '/be/v1/apps', { name, label: 'Again' });
      expect(dup.statusCode).toBe(409);
      expect(dup.json()).toMatchObject({ error: 'already-exists', param: 'name' });
    });

    it('validates maxBuilds, label and deployment names (which must be the org\'s own)', async () => {
      const mine = await fsDeployment();
      const theirs = await fsDeployment(uniqueName('theirs'), otherAdmin.headers);
      const cases: Array<[unknown, string, string]> = [
        [{ name: 'a_x' }, 'missing-param', 'label'],
        [{ label: 'x' }, 'missing-param', 'name'],
        [{ name: 'a_x', label: 'x', maxBuilds: 0 }, 'invalid-param', 'maxBuilds'],
        [{ name: 'a_x', label: 'x', maxBuilds: 101 }, 'invalid-param', 'maxBuilds'],
        [{ name: 'a_x', label: 'x', maxBuilds: '5' }, 'invalid-param', 'maxBuilds'],
        [{ name: 'a_x', label: 'x', maxBuilds: 2.5 }, 'invalid-param', 'maxBuilds'],
        [{ name: 'a_x', label: 'x', deployments: ['no_such_dep'] }, 'invalid-param', 'deployments'],
        [{ name: 'a_x', label: 'x', deployments: [mine.name, theirs.name] }, 'invalid-param', 'deployments'],
        [{ name: 'a_x', label: 'x', deployments: 'all' }, 'invalid-param', 'deployments'],
        [{ name: 'a_x', label: 'x', iCurBuild: 3 }, 'invalid-param', 'iCurBuild'],
        // '-' is allowed in app names (issue 13, decided), but not first.
        [{ name: '-ax', label: 'x' }, 'invalid-param', 'name'],
        [{ name: 'a.x', label: 'x' }, 'invalid-param', 'name'],
      ];
      for (const [body, error, param] of cases) {
        const r = await req('POST', '/be/v1/apps', body);
        expect(r.statusCode, JSON.stringify(body)).toBe(400);
        expect(r.json(), JSON.stringify(body)).toMatchObject({ error, param });
      }
      expect((await req('GET', '/be/v1/apps/a_x')).statusCode).toBe(404);
      const ok = await req('POST', '/be/v1/apps', { name: uniqueName('g'), label: 'x', maxBuilds: 100, deployments: [mine.name, mine.name] });
      expect(ok.json().app).toMatchObject({ maxBuilds: 100, deployments: [mine.name] });
      const one = await req('POST', '/be/v1/apps', { name: uniqueName('g'), label: 'x', maxBuilds: 1, deployments: [] });
      expect(one.json().app).toMatchObject({ maxBuilds: 1, deployments: [] });
    });

    it('patches label, maxBuilds and the deployment list ([] or null = all of the org)', async () => {
      const d1 = await fsDeployment();
      const d2 = await fsDeployment();
      const name = uniqueName('game');
      await req('POST', '/be/v1/apps', { name, label: 'L', deployments: [d1.name] });
      t.clock.advance(3000);
      const p = await req('PATCH', '/be/v1/apps', { name, label: 'New', maxBuilds: 7, deployments: [d2.name, d1.name] });
      expect(p.statusCode, p.body).toBe(200);
      expect(p.json().app).toMatchObject({ label: 'New', maxBuilds: 7, deployments: [d1.name, d2.name].sort(), updated: Math.floor(t.clock.now() / 1000) });
      expect((await req('PATCH', '/be/v1/apps', { name, deployments: [] })).json().app.deployments).toEqual([]);
      await req('PATCH', '/be/v1/apps', { name, deployments: [d2.name] });
      expect((await req('PATCH', '/be/v1/apps', { name, label: 'Keep' })).json().app.deployments).toEqual([d2.name]);
      expect((await req('PATCH', '/be/v1/apps', { name, deployments: null })).json().app.deployments).toEqual([]);
      expect((await req('PATCH', '/be/v1/apps', { name, maxBuilds: 0 })).json()).toMatchObject({ error: 'invalid-param', param: 'maxBuilds' });
      expect((await req('PATCH', '/be/v1/apps', { name, deployments: ['nope_dep'] })).json()).toMatchObject({ error: 'invalid-param', param: 'deployments' });
      expect((await req('PATCH', '/be/v1/apps', { name, dxfName: 'x' })).json()).toMatchObject({ error: 'invalid-param', param: 'dxfName' });
      expect((await req('PATCH', '/be/v1/apps', { name: 'no_such_app', label: 'x' })).statusCode).toBe(404);
      expect((await req('GET', `/be/v1/apps/${name}`)).json().app).toMatchObject({ label: 'Keep', maxBuilds: 7, deployments: [] });
    });

    it('lists with filters (name partial, error) and fields[] on list and one', async () => {
      const tag = uniqueName('lst').toLowerCase();
      for (const s of ['a', 'b', 'c']) await req('POST', '/be/v1/apps', { name: `${tag}_${s}`, label: s.toUpperCase() });
      const error = JSON.stringify({ task: 't_X', type: 'deploy', message: 'origin refused', since: 1767225600 });
      await db().updateTable('apps').set({ error }).where('name', '=', `${tag}_b`).execute();
      const list = (await req('GET', `/be/v1/apps?name=${tag.toUpperCase()}&order[]=[-name]`)).json();
      expect(list.total).toBe(3);
      expect(list.apps.map((a: any) => a.name)).toEqual([`${tag}_c`, `${tag}_b`, `${tag}_a`]);
      const failing = (await req('GET', `/be/v1/apps?name=${tag}&error=true`)).json();
      expect(failing.apps).toHaveLength(1);
      expect(failing.apps[0]).toMatchObject({ name: `${tag}_b`, error: { task: 't_X', type: 'deploy', message: 'origin refused', since: 1767225600 } });
      expect((await req('GET', `/be/v1/apps?name=${tag}&error=false`)).json().total).toBe(2);
      const projected = (await req('GET', `/be/v1/apps?name=${tag}&fields[]=name&fields[]=label&limit=2`)).json();
      expect(projected).toMatchObject({ total: 3, limit: 2, apps: [{ name: `${tag}_a`, label: 'A' }, { name: `${tag}_b`, label: 'B' }] });
      expect(Object.keys(projected.apps[0]).sort()).toEqual(['label', 'name']);
      const one = (await req('GET', `/be/v1/apps/${tag}_a?fields=maxBuilds,iCurBuild`)).json();
      expect(one.app).toEqual({ maxBuilds: 5, iCurBuild: null });
      expect((await req('GET', `/be/v1/apps/${tag}_a?fields[]=nope`)).json()).toMatchObject({ error: 'invalid-param', param: 'fields[]' });
      expect((await req('GET', '/be/v1/apps?order[]=secret')).json()).toMatchObject({ error: 'invalid-param', param: 'order[]' });
      expect((await req('GET', '/be/v1/apps?limit=0')).json()).toMatchObject({ error: 'invalid-param', param: 'limit' });
    });

    it('shows builds and patches the pipeline recorded', async () => {
      const name = uniqueName('game');
      await req('POST', '/be/v1/apps', { name, label: 'L' });
      const app = await db().selectFrom('apps').selectAll().where('name', '=', name).executeTakeFirstOrThrow();
      const at = Date.UTC(2026, 0, 2);
      await db().insertInto('builds').values([
        { app_id: app.id, build_id: 1, build_name: '1.0.0', size_bytes: 1000, image_bytes: 600, files: 3, dxf_name: 'b0001-t000', state: 'ready', created_ms: at },
        { app_id: app.id, build_id: 2, build_name: null, size_bytes: 1100, image_bytes: 650, files: 4, dxf_name: 'b0002-t000', state: 'ready', created_ms: at },
        { app_id: app.id, build_id: 3, build_name: '1.0.2', size_bytes: 0, image_bytes: 0, files: 0, dxf_name: null, state: 'importing', created_ms: at },
      ]).execute();
      await db().insertInto('patches').values({ app_id: app.id, from_build_id: 1, to_build_id: 2, size_bytes: 120, created_ms: at }).execute();
      await db().updateTable('apps').set({ i_cur_build: 2, dxf_name: 'b0002-t000', size_bytes: 1370 }).where('id', '=', app.id).execute();
      const got = (await req('GET', `/be/v1/apps/${name}`)).json().app;
      expect(got).toMatchObject({
        iCurBuild: 2, dxfName: 'b0002-t000', sizeBytes: 1370,
        builds: [
          { buildId: 1, buildName: '1.0.0', sizeBytes: 1000, files: 3, created: at / 1000 },
          { buildId: 2, buildName: null, sizeBytes: 1100, files: 4, created: at / 1000 },
        ],
        patches: [{ fromBuildId: 1, toBuildId: 2, sizeBytes: 120 }],
      });
    });

    it('deletes an app with its rows and its files in every origin it may be on; 409 app-locked while processing', async () => {
      // A fresh org: an app without a list is cleaned on every deployment of its org, and the
      // shared org also holds deployments on unreachable S3 endpoints.
      const own = await createOrg(t);
      const h = (await loginAdmin(t, own)).headers;
      const named = await fsDeployment(undefined, h);
      const unnamed = await fsDeployment(undefined, h);
      const explicitApp = uniqueName('game');
      const allApp = uniqueName('game');
      await req('POST', '/be/v1/apps', { name: explicitApp, label: 'E', deployments: [named.name] }, h);
      await req('POST', '/be/v1/apps', { name: allApp, label: 'A' }, h);
      const files = {
        explicitNamed: publishFile(named.folder, `dxf/${own.name}/${explicitApp}/release.json`),
        explicitUnnamed: publishFile(unnamed.folder, `dxf/${own.name}/${explicitApp}/release.json`),
        allNamed: publishFile(named.folder, `pat/${own.name}/${allApp}/0002/0001/p.bin`),
        allUnnamed: publishFile(unnamed.folder, `dxf/${own.name}/${allApp}/0001/b0001-t000/m.bin`),
      };
      const allRow = await db().selectFrom('apps').selectAll().where('name', '=', allApp).executeTakeFirstOrThrow();
      await db().insertInto('builds').values({ app_id: allRow.id, build_id: 1, build_name: null, size_bytes: 1, image_bytes: 1, files: 1, dxf_name: null, state: 'ready', created_ms: 1 }).execute();
      await db().insertInto('patches').values({ app_id: allRow.id, from_build_id: 1, to_build_id: 2, size_bytes: 1, created_ms: 1 }).execute();

      await db().updateTable('apps').set({ processing: 1 }).where('id', '=', allRow.id).execute();
      const locked = await req('DELETE', `/be/v1/apps/${allApp}`, undefined, h);
      expect(locked.statusCode).toBe(409);
      expect(locked.json().error).toBe('app-locked');
      await db().updateTable('apps').set({ processing: 0 }).where('id', '=', allRow.id).execute();

      // Cross-org: B's administrator cannot see or delete it.
      for (const [m, u, b] of [['GET', `/be/v1/apps/${allApp}`, undefined], ['DELETE', `/be/v1/apps/${allApp}`, undefined], ['PATCH', '/be/v1/apps', { name: allApp, label: 'x' }]] as const) {
        const r = await req(m, u, b, otherAdmin.headers);
        expect(r.statusCode, `${m} ${u}`).toBe(404);
        expect(r.json().error).toBe('not-found');
      }

      const del = await req('DELETE', `/be/v1/apps/${allApp}`, undefined, h);
      expect(del.statusCode, del.body).toBe(200);
      expect(del.json()).toEqual({ status: 'success', cleanup: { ok: true, failures: [] } });
      expect(fs.existsSync(files.allNamed)).toBe(false);
      expect(fs.existsSync(files.allUnnamed)).toBe(false);
      expect(await db().selectFrom('builds').selectAll().where('app_id', '=', allRow.id).execute()).toEqual([]);
      expect(await db().selectFrom('patches').selectAll().where('app_id', '=', allRow.id).execute()).toEqual([]);
      expect((await req('GET', `/be/v1/apps/${allApp}`, undefined, h)).statusCode).toBe(404);
      expect((await req('DELETE', `/be/v1/apps/${allApp}`, undefined, h)).statusCode).toBe(404);

      // An app with an explicit list: its targets, plus deployments that recorded a publication of it.
      expect((await req('DELETE', `/be/v1/apps/${explicitApp}`, undefined, h)).statusCode).toBe(200);
      expect(fs.existsSync(files.explicitNamed)).toBe(false);
      expect(fs.existsSync(files.explicitUnnamed)).toBe(true);

      const third = uniqueName('game');
      await req('POST', '/be/v1/apps', { name: third, label: 'T', deployments: [named.name] }, h);
      const thirdRow = await db().selectFrom('apps').selectAll().where('name', '=', third).executeTakeFirstOrThrow();
      const unnamedRow = await db().selectFrom('deployments').selectAll().where('name', '=', unnamed.name).where('org_id', '=', await orgId(own.name)).executeTakeFirstOrThrow();
      await recordPublication(t.server.db.db, thirdRow.id, unnamedRow.id, 10, t.clock.now());
      const stale = publishFile(unnamed.folder, `dxf/${own.name}/${third}/release.json`);
      expect((await req('DELETE', `/be/v1/apps/${third}`, undefined, h)).statusCode).toBe(200);
      expect(fs.existsSync(stale)).toBe(false);
    });

    it('reports origins it could not clean without failing the delete (and without their secrets)', async () => {
      const d = uniqueName('down');
      // Nothing listens on the discard port: the origin refuses connections.
      const body = s3Body(d, { s3: { ...s3Body('x').s3, endpoint: 'http://127.0.0.1:9', forcePathStyle: true } });
      expect((await req('POST', '/be/v1/deployments', body)).statusCode).toBe(201);
      const name = uniqueName('game');
      await req('POST', '/be/v1/apps', { name, label: 'L', deployments: [d] });
      const del = await req('DELETE', `/be/v1/apps/${name}`);
      expect(del.statusCode).toBe(200);
      // One generic message: neither the connect error nor the address (the origin is no port scanner).
      expect(del.json().cleanup).toEqual({ ok: false, failures: [{ origin: d, message: expect.stringContaining('could not be reached') }] });
      expect(del.body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|:9\b/);
      expect(del.body).not.toContain(S3_SECRET);
      expect((await req('GET', `/be/v1/apps/${name}`)).statusCode).toBe(404);
    });
  });

  describe('permissions and other organizations', () => {
    it('needs the matching bit for each method and names it', async () => {
      const readOnly = await createRole(t, admin.headers, { apps: 2, deployments: 2 });
      const u = await createUser(t, org, admin.headers, [readOnly]);
      const m = await createMachineUser(t, org, admin.headers, [readOnly]);
      const d = await fsDeployment();
      const appName = uniqueName('game');
      await req('POST', '/be/v1/apps', { name: appName, label: 'x' });
      const probes: Array<[string, string, unknown, string]> = [
        ['POST', '/be/v1/apps', { name: 'p_app', label: 'x' }, 'apps.create'],
        ['PATCH', '/be/v1/apps', { name: appName, label: 'y' }, 'apps.update'],
        ['DELETE', `/be/v1/apps/${appName}`, undefined, 'apps.delete'],
        ['POST', '/be/v1/deployments', { name: 'p_dep', type: 'fs', fs: { path: '/srv/x' } }, 'deployments.create'],
        ['PATCH', '/be/v1/deployments', { name: d.name, label: 'y' }, 'deployments.update'],
        ['DELETE', `/be/v1/deployments/${d.name}`, undefined, 'deployments.delete'],
        ['GET', '/be/v1/consumption', undefined, 'consumption.read'],
      ];
      for (const headers of [u.headers, m.headers]) {
        for (const [method, url, body, permission] of probes) {
          const r = await req(method, url, body, headers);
          expect(r.statusCode, `${method} ${url}`).toBe(403);
          expect(r.json()).toMatchObject({ error: 'forbidden', permission });
        }
        expect((await req('GET', `/be/v1/apps/${appName}`, undefined, headers)).statusCode).toBe(200);
        expect((await req('GET', `/be/v1/deployments/${d.name}`, undefined, headers)).statusCode).toBe(200);
      }
      const none = await createRole(t, admin.headers, { tasks: 2 });
      const n = await createUser(t, org, admin.headers, [none]);
      for (const [url, permission] of [['/be/v1/apps', 'apps.read'], [`/be/v1/apps/${appName}`, 'apps.read'], ['/be/v1/deployments', 'deployments.read'], [`/be/v1/deployments/${d.name}`, 'deployments.read']]) {
        expect((await req('GET', url, undefined, n.headers)).json()).toMatchObject({ error: 'forbidden', permission });
      }
      expect((await t.req('GET', '/be/v1/apps')).statusCode).toBe(401);
    });

    it('another organization gets 404 for every object and may reuse the names', async () => {
      const d = await fsDeployment();
      const appName = uniqueName('game');
      await req('POST', '/be/v1/apps', { name: appName, label: 'x', deployments: [d.name] });
      const probes: Array<[string, string, unknown]> = [
        ['GET', `/be/v1/apps/${appName}`, undefined],
        ['PATCH', '/be/v1/apps', { name: appName, maxBuilds: 9 }],
        ['DELETE', `/be/v1/apps/${appName}`, undefined],
        ['GET', `/be/v1/deployments/${d.name}`, undefined],
        ['PATCH', '/be/v1/deployments', { name: d.name, label: 'hacked' }],
        ['DELETE', `/be/v1/deployments/${d.name}`, undefined],
      ];
      for (const [method, url, body] of probes) {
        const r = await req(method, url, body, otherAdmin.headers);
        expect(r.statusCode, `${method} ${url}`).toBe(404);
        expect(r.json().error).toBe('not-found');
      }
      const apps = (await req('GET', '/be/v1/apps?limit=1000', undefined, otherAdmin.headers)).json().apps.map((a: any) => a.name);
      expect(apps).not.toContain(appName);
      const deps = (await req('GET', '/be/v1/deployments?limit=1000', undefined, otherAdmin.headers)).json().deployments.map((x: any) => x.name);
      expect(deps).not.toContain(d.name);
      expect((await req('POST', '/be/v1/deployments', { name: d.name, type: 'fs', fs: { path: d.folder } }, otherAdmin.headers)).statusCode).toBe(201);
      expect((await req('POST', '/be/v1/apps', { name: appName, label: 'x', deployments: [d.name] }, otherAdmin.headers)).statusCode).toBe(201);
      expect((await req('GET', `/be/v1/apps/${appName}`)).json().app.label).toBe('x');
    });
  });

  describe('contract', () => {
    it('bodies that are not JSON objects are invalid-json; the OpenAPI document has every route and no secret in answers', async () => {
      for (const url of ['/be/v1/apps', '/be/v1/deployments']) {
        for (const body of ['null', '[1]', '{nope']) {
          const r = await t.req('POST', url, { headers: { ...admin.headers, 'content-type': 'application/json' }, body });
          expect(r.statusCode, `${url} ${body}`).toBe(400);
          expect(r.json().error).toBe('invalid-json');
        }
      }
      const doc = (await t.req('GET', '/openapi.json')).json();
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([
        '/be/v1/apps', '/be/v1/apps/{name}', '/be/v1/deployments', '/be/v1/deployments/{name}', '/be/v1/consumption',
      ]));
      for (const [p, methods] of Object.entries<any>(doc.paths)) {
        if (!/apps|deployments|consumption/.test(p)) continue;
        for (const op of Object.values<any>(methods)) {
          const answers = JSON.stringify(op.responses);
          expect(answers, p).not.toMatch(/"(secretAccessKey|key)":/);
          expect(Object.keys(op.responses), p).toEqual(expect.arrayContaining(['400', '401', '403', '404', '500']));
        }
      }
    });
  });

  describe('organization deletion', () => {
    it('takes the org\'s apps and deployments with it, also when an app names a deployment', async () => {
      const gone = await createOrg(t);
      const h = (await loginAdmin(t, gone)).headers;
      const d = await fsDeployment('cdn_x', h);
      expect((await req('POST', '/be/v1/apps', { name: 'game_x', label: 'X', deployments: [d.name] }, h)).statusCode).toBe(201);
      const oid = await orgId(gone.name);
      const del = await t.req('DELETE', `/adm/v1/orgs/${gone.name}`, { headers: t.admin });
      expect(del.statusCode, del.body).toBe(200);
      expect(await db().selectFrom('apps').selectAll().where('org_id', '=', oid).execute()).toEqual([]);
      expect(await db().selectFrom('deployments').selectAll().where('org_id', '=', oid).execute()).toEqual([]);
    });
  });

  describe('consumption', () => {
    it('answers zeros for new apps and deployments, then the recorded bytes, for the caller\'s org only', async () => {
      const fresh = await createOrg(t);
      const h = (await loginAdmin(t, fresh)).headers;
      expect((await req('GET', '/be/v1/consumption', undefined, h)).json()).toEqual({ status: 'success', consumption: { apps: [], deployments: [] } });
      const d1 = await fsDeployment('cdn_one', h);
      await fsDeployment('cdn_two', h);
      await req('POST', '/be/v1/apps', { name: 'game_a', label: 'A' }, h);
      await req('POST', '/be/v1/apps', { name: 'game_b', label: 'B' }, h);
      const zero = (await req('GET', '/be/v1/consumption', undefined, h)).json().consumption;
      expect(zero).toEqual({
        apps: [
          { appName: 'game_a', buildsBytes: 0, imagesBytes: 0, patchesBytes: 0, tracesBytes: 0 },
          { appName: 'game_b', buildsBytes: 0, imagesBytes: 0, patchesBytes: 0, tracesBytes: 0 },
        ],
        deployments: [{ name: 'cdn_one', publishedBytes: 0 }, { name: 'cdn_two', publishedBytes: 0 }],
      });
      const oid = await orgId(fresh.name);
      const a = await db().selectFrom('apps').selectAll().where('org_id', '=', oid).where('name', '=', 'game_a').executeTakeFirstOrThrow();
      const b = await db().selectFrom('apps').selectAll().where('org_id', '=', oid).where('name', '=', 'game_b').executeTakeFirstOrThrow();
      const big = 5 * 2 ** 40;
      await db().updateTable('apps').set({ uploads_bytes: 700, traces_bytes: 33 }).where('id', '=', a.id).execute();
      await db().insertInto('builds').values([
        { app_id: a.id, build_id: 1, build_name: null, size_bytes: 1, image_bytes: big, files: 1, dxf_name: null, state: 'ready', created_ms: 1 },
        { app_id: a.id, build_id: 2, build_name: null, size_bytes: 1, image_bytes: 200, files: 1, dxf_name: null, state: 'ready', created_ms: 1 },
      ]).execute();
      await db().insertInto('patches').values([
        { app_id: a.id, from_build_id: 1, to_build_id: 2, size_bytes: 40, created_ms: 1 },
        { app_id: b.id, from_build_id: 1, to_build_id: 2, size_bytes: 2, created_ms: 1 },
      ]).execute();
      const dep = await db().selectFrom('deployments').selectAll().where('org_id', '=', oid).where('name', '=', d1.name).executeTakeFirstOrThrow();
      await recordPublication(t.server.db.db, a.id, dep.id, 1000, t.clock.now());
      await recordPublication(t.server.db.db, b.id, dep.id, 24, t.clock.now());
      await recordPublication(t.server.db.db, b.id, dep.id, 25, t.clock.now());
      const filled = (await req('GET', '/be/v1/consumption', undefined, h)).json().consumption;
      expect(filled).toEqual({
        apps: [
          { appName: 'game_a', buildsBytes: 700, imagesBytes: big + 200, patchesBytes: 40, tracesBytes: 33 },
          { appName: 'game_b', buildsBytes: 0, imagesBytes: 0, patchesBytes: 2, tracesBytes: 0 },
        ],
        deployments: [{ name: 'cdn_one', publishedBytes: 1025 }, { name: 'cdn_two', publishedBytes: 0 }],
      });
      const others = (await req('GET', '/be/v1/consumption')).json().consumption;
      expect(others.apps.map((x: any) => x.appName)).not.toContain('game_a');
    });
  });
});
