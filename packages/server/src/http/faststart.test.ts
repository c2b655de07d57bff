import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTrace, type Trace } from '@rockit/engine';
import { aclCovers, signDownloadToken, verifyDownloadToken } from '../domain/download-token.js';
import { makeTar, pseudoRandomBytes } from '../pipeline/test-support/fixtures.js';
import { createMachineUser, createOrg, createRole, createUser, loginAdmin, uniqueName, type OrgFixture, type Session } from '../test-support/factories.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

const env = {
  ROCKIT_IMPORT_ALLOW_PRIVATE_URLS: 'true',
  ROCKIT_LEASE_SECONDS: '3600',
  ROCKIT_TASK_MAX_ATTEMPTS: '1',
  ROCKIT_AUTH_SECONDS: String(24 * 3600),
  ROCKIT_SESSION_SECONDS: String(30 * 24 * 3600),
  ROCKIT_DOWNLOAD_TOKEN_SECONDS: '600',
  ROCKIT_MAX_TRACE_BYTES: String(64 * 1024),
  ROCKIT_LOGIN_MAX_FAILURES_PER_ADDRESS: '4',
};

const DATA = 40_000;
const LEVEL = 9_000;

function gameTar(): Promise<Buffer> {
  return makeTar([
    { name: 'game/', type: 'directory' },
    { name: 'game/data.bin', content: pseudoRandomBytes(DATA, 7) },
    { name: 'game/level.bin', content: pseudoRandomBytes(LEVEL, 9) },
  ]);
}

/** Creates an app through the API and publishes one build through the real pipeline. */
async function publishedApp(t: TestServer, h: Record<string, string>): Promise<string> {
  const name = uniqueName('app');
  const c = await t.req('POST', '/be/v1/apps', { headers: h, body: { name, label: name } });
  expect(c.statusCode, c.body).toBe(201);
  const r = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName: name, buildName: '1.0' } });
  expect(r.statusCode, r.body).toBe(202);
  const up = new URL(r.json().upload.url);
  const put = await t.app.inject({ method: 'PUT', url: up.pathname + up.search, headers: { 'content-type': 'application/x-tar' }, payload: await gameTar() });
  expect(put.statusCode, put.body).toBe(200);
  for (let i = 0; i < 2000; i++) {
    const a = await t.req('GET', `/be/v1/apps/${name}`, { headers: h });
    if (a.json().app.iCurBuild === 1) return name;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error('the build was not published');
}

const traceOf = (org: string, app: string, records: Array<[number, string, number, number]>, header: Partial<Trace['header']> = {}): Trace => ({
  header: { orgName: org, appName: app, buildId: 1, dxfName: '', sessionId: 's-1', firstSession: true, startTimeUnixSeconds: 1_700_000_000, ...header },
  records: records.map(([tMs, p, offsetBytes, lengthBytes]) => ({ tMs, path: p, offsetBytes, lengthBytes })),
});

const ndjson = (org: string, app: string, lines: unknown[], header: Record<string, unknown> = {}): string =>
  [JSON.stringify({ format: 'rockit-trace', version: 1, org, app, session: 'n-1', firstSession: false, start: 1_700_000_000, ...header }), ...lines.map((l) => JSON.stringify(l))].join('\n') + '\n';

describe.each(TEST_DIALECTS)('download keys, client API and traces (%s)', (dialect) => {
  let t: TestServer;
  let orgA: OrgFixture;
  let orgB: OrgFixture;
  let adminA: Session;
  let adminB: Session;
  let appA: string;
  let appA2: string;
  let appB: string;
  let fsFolder: string;

  beforeAll(async () => {
    t = await createTestServer({ dialect, env });
    orgA = await createOrg(t);
    orgB = await createOrg(t);
    adminA = await loginAdmin(t, orgA);
    adminB = await loginAdmin(t, orgB);
    [appA, appA2, appB] = await Promise.all([publishedApp(t, adminA.headers), publishedApp(t, adminA.headers), publishedApp(t, adminB.headers)]);
    fsFolder = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-fsdep-'));
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    if (fsFolder) fs.rmSync(fsFolder, { recursive: true, force: true });
  });

  const createKey = async (h: Record<string, string>, appName: string, label?: string) => {
    const r = await t.req('POST', '/be/v1/keys', { headers: h, body: { appName, ...(label !== undefined ? { label } : {}) } });
    expect(r.statusCode, r.body).toBe(201);
    return r.json().key as { id: string; key: string; appName: string; label: string; created: number; lastUsed: null };
  };
  const clientAuth = (body: unknown, remoteAddress = '10.0.0.1') => t.req('POST', '/client/v1/auth', { body, remoteAddress });
  const postTrace = (headers: Record<string, string>, payload: Buffer | string, contentType = 'application/octet-stream') =>
    t.app.inject({ method: 'POST', url: '/client/v1/traces', headers: { 'content-type': contentType, ...headers }, payload });
  const traceCount = async (): Promise<number> => Number((await t.server.db.db.selectFrom('traces').select((eb) => eb.fn.countAll<number>().as('c')).executeTakeFirstOrThrow()).c);
  const traceBlobs = (): string[] => {
    const dir = path.join(t.dataDir, 'blobs', 'traces');
    return fs.existsSync(dir) ? (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.rktr')) : [];
  };

  it('keys: create shows the secret once; list, get, delete; validation; per-app maximum', async () => {
    const h = adminA.headers;
    const k = await createKey(h, appA, 'launcher 1');
    expect(k).toMatchObject({ appName: appA, label: 'launcher 1', lastUsed: null });
    expect(k.id).toMatch(/^dk_[0-9A-Z]{26}$/);
    expect(k.key).toMatch(/^rkdk_/);
    const got = await t.req('GET', `/be/v1/keys/${k.id}`, { headers: h });
    expect(got.statusCode).toBe(200);
    expect(got.json().key).toEqual({ id: k.id, appName: appA, label: 'launcher 1', created: k.created, lastUsed: null });
    expect(got.body).not.toContain(k.key);
    const list = await t.req('GET', `/be/v1/keys?appName=${appA}`, { headers: h });
    expect(list.json()).toMatchObject({ status: 'success', total: 1, offset: 0, limit: 10 });
    expect(list.json().keys.map((x: any) => x.id)).toEqual([k.id]);
    expect(list.body).not.toContain(k.key);
    const projected = await t.req('GET', `/be/v1/keys?fields[]=id,label&order[]=-created`, { headers: h });
    expect(projected.json().keys[0]).toEqual({ id: k.id, label: 'launcher 1' });
    expect((await t.req('POST', '/be/v1/keys', { headers: h, body: { appName: 'no_such_app' } })).json()).toMatchObject({ error: 'not-found' });
    expect((await t.req('POST', '/be/v1/keys', { headers: h, body: { appName: appA, label: 'x'.repeat(201) } })).json()).toMatchObject({ error: 'invalid-param', param: 'label' });
    expect((await t.req('POST', '/be/v1/keys', { headers: h, body: { appName: appA, extra: 1 } })).json()).toMatchObject({ error: 'invalid-param' });
    expect((await t.req('POST', '/be/v1/keys', { headers: h, body: {} })).json()).toMatchObject({ error: 'missing-param', param: 'appName' });
    expect((await t.req('POST', '/be/v1/keys', { headers: h, body: [] })).json()).toMatchObject({ error: 'invalid-json' });
    expect((await t.req('GET', '/be/v1/keys/dk_00000000000000000000000000', { headers: h })).statusCode).toBe(404);
    expect((await t.req('GET', '/be/v1/keys?order[]=secret', { headers: h })).json()).toMatchObject({ error: 'invalid-param', param: 'order[]' });
    const del = await t.req('DELETE', `/be/v1/keys/${k.id}`, { headers: h });
    expect(del.statusCode).toBe(200);
    expect((await t.req('DELETE', `/be/v1/keys/${k.id}`, { headers: h })).statusCode).toBe(404);

    const app = await publishedApp(t, h);
    const made = [];
    for (let i = 0; i < 20; i++) made.push(await createKey(h, app));
    const over = await t.req('POST', '/be/v1/keys', { headers: h, body: { appName: app } });
    expect(over.statusCode).toBe(409);
    expect(over.json().error).toBe('invalid-state');
    // Deleting the app deletes its keys.
    expect((await t.req('DELETE', `/be/v1/apps/${app}`, { headers: h })).statusCode).toBe(200);
    expect((await t.req('GET', `/be/v1/keys/${made[0].id}`, { headers: h })).statusCode).toBe(404);
  }, 60_000);

  it('keys: permission matrix (keys 0/read/create/delete), no escalation through a download key', async () => {
    const h = adminA.headers;
    const existing = await createKey(h, appA, 'perm');
    const cases: Array<[number, Record<string, number>]> = [
      [0, { get: 403, list: 403, create: 403, del: 403 }],
      [2, { get: 200, list: 200, create: 403, del: 403 }],
      [1, { get: 403, list: 403, create: 201, del: 403 }],
      [8, { get: 403, list: 403, create: 403, del: 404 }],
    ];
    for (const [bits, want] of cases) {
      const role = await createRole(t, h, { keys: bits, apps: 15 });
      const u = await createUser(t, orgA, h, [role]);
      const m = await createMachineUser(t, orgA, h, [role]);
      for (const creds of [u.headers, m.headers]) {
        const get = await t.req('GET', `/be/v1/keys/${existing.id}`, { headers: creds });
        const list = await t.req('GET', '/be/v1/keys', { headers: creds });
        const create = await t.req('POST', '/be/v1/keys', { headers: creds, body: { appName: appA } });
        const del = await t.req('DELETE', '/be/v1/keys/dk_00000000000000000000000000', { headers: creds });
        expect([get.statusCode, list.statusCode, create.statusCode, del.statusCode], `keys=${bits}`).toEqual([want.get, want.list, want.create, want.del]);
        for (const [r, action] of [[get, 'read'], [list, 'read'], [create, 'create'], [del, 'delete']] as const) {
          if (r.statusCode === 403) expect(r.json()).toMatchObject({ status: 'error', error: 'forbidden', permission: `keys.${action}` });
        }
        if (create.statusCode === 201) await t.req('DELETE', `/be/v1/keys/${create.json().key.id}`, { headers: h });
      }
    }
    // A download key is no backend credential, and no credential opens another app.
    const asApiKey = await t.req('GET', '/be/v1/apps', { headers: { 'x-rockit-orgname': orgA.name, 'x-rockit-username': 'x', 'x-rockit-api-key': existing.key } });
    expect(asApiKey.statusCode).toBe(401);
    expect((await t.req('GET', '/be/v1/keys', { headers: { authorization: `Bearer ${existing.key}` } })).statusCode).toBe(401);
    expect((await t.req('GET', '/be/v1/keys')).json().error).toBe('token-missing');
    // Traces list needs trainings.read.
    const noTrain = await createUser(t, orgA, h, [await createRole(t, h, { keys: 15, apps: 15 })]);
    const r = await t.req('GET', `/be/v1/traces?appName=${appA}`, { headers: noTrain.headers });
    expect(r.json()).toMatchObject({ error: 'forbidden', permission: 'trainings.read' });
    const train = await createUser(t, orgA, h, [await createRole(t, h, { trainings: 2 })]);
    expect((await t.req('GET', `/be/v1/traces?appName=${appA}`, { headers: train.headers })).statusCode).toBe(200);
    await t.req('DELETE', `/be/v1/keys/${existing.id}`, { headers: h });
  }, 60_000);

  it('keys and traces: cross-org requests see nothing of another org', async () => {
    const kA = await createKey(adminA.headers, appA, 'cross');
    const hB = adminB.headers;
    expect((await t.req('GET', `/be/v1/keys/${kA.id}`, { headers: hB })).statusCode).toBe(404);
    expect((await t.req('DELETE', `/be/v1/keys/${kA.id}`, { headers: hB })).statusCode).toBe(404);
    expect((await t.req('POST', '/be/v1/keys', { headers: hB, body: { appName: appA } })).statusCode).toBe(404);
    const list = await t.req('GET', '/be/v1/keys', { headers: hB });
    expect(list.body).not.toContain(kA.id);
    expect((await t.req('GET', `/be/v1/keys?appName=${appA}`, { headers: hB })).json()).toMatchObject({ total: 0, keys: [] });
    expect((await t.req('GET', `/be/v1/traces?appName=${appA}`, { headers: hB })).statusCode).toBe(404);
    // Org B's key for its app does not open org A's app, neither through /client/v1/auth nor a token.
    const kB = await createKey(hB, appB, 'b');
    const wrong = await clientAuth({ orgName: orgA.name, appName: appA, key: kB.key }, '10.1.0.1');
    expect(wrong.statusCode).toBe(401);
    const tokB = (await clientAuth({ orgName: orgB.name, appName: appB, key: kB.key }, '10.1.0.1')).json().auth.token;
    expect((await t.app.inject({ method: 'GET', url: `/cdn/dxf/${orgA.name}/${appA}/release.json?token=${encodeURIComponent(tokB)}` })).statusCode).toBe(403);
    // A trace of org A's app sent with org B's credentials is refused and not stored.
    const before = await traceCount();
    const r = await postTrace({ 'x-rockit-download-token': tokB }, Buffer.from(encodeTrace(traceOf(orgA.name, appA, [[0, 'game/data.bin', 0, 10]]))));
    expect(r.statusCode).toBe(403);
    expect(r.json()).toMatchObject({ status: 'error', error: 'forbidden' });
    expect(await traceCount()).toBe(before);
    await t.req('DELETE', `/be/v1/keys/${kA.id}`, { headers: adminA.headers });
    await t.req('DELETE', `/be/v1/keys/${kB.id}`, { headers: hB });
  });

  it('client auth: one identical 401 for unknown org, app, key and other-app keys; throttled per address', async () => {
    const kA = await createKey(adminA.headers, appA, 'auth');
    const kA2 = await createKey(adminA.headers, appA2, 'auth2');
    const bodies = [
      { orgName: 'no_such_org', appName: appA, key: kA.key },
      { orgName: orgA.name, appName: 'no_such_app', key: kA.key },
      { orgName: orgA.name, appName: appA, key: 'rkdk_wrong' },
      { orgName: orgA.name, appName: appA, key: kA2.key },
    ];
    const answers = [];
    for (const [i, b] of bodies.entries()) answers.push(await clientAuth(b, `10.2.0.${i + 1}`));
    for (const a of answers) {
      expect(a.statusCode).toBe(401);
      expect({ ...a.json(), requestId: undefined }).toEqual({ ...answers[0].json(), requestId: undefined });
    }
    expect(answers[0].json()).toMatchObject({ status: 'error', error: 'invalid-credentials' });
    expect((await clientAuth({ orgName: orgA.name, appName: appA })).json()).toMatchObject({ error: 'missing-param', param: 'key' });
    expect((await clientAuth({ orgName: orgA.name, appName: appA, key: 'k'.repeat(201) })).json()).toMatchObject({ error: 'invalid-param', param: 'key' });

    const ok = await clientAuth({ orgName: orgA.name, appName: appA, key: kA.key });
    expect(ok.statusCode, ok.body).toBe(200);
    const j = ok.json();
    expect(j.auth.expires).toBe(Math.floor(t.clock.now() / 1000) + 600);
    expect(j.auth.token).toMatch(new RegExp(`^st=\\d+~exp=${j.auth.expires}~acl=/cdn/dxf/${orgA.name}/${appA}/\\*!/cdn/pat/${orgA.name}/${appA}/\\*~hmac=[0-9a-f]{64}$`));
    expect(j.release).toMatchObject({ format: 'rockit-release', orgName: orgA.name, appName: appA, buildId: 1 });
    expect(j.origins).toBeUndefined();
    expect((await t.req('GET', `/be/v1/keys/${kA.id}`, { headers: adminA.headers })).json().key.lastUsed).toBe(Math.floor(t.clock.now() / 1000));

    // Throttle: 4 failures per address per window, then 429 even for the right key; other addresses unaffected.
    for (let i = 0; i < 4; i++) expect((await clientAuth({ orgName: orgA.name, appName: appA, key: `rkdk_guess${i}` }, '10.3.0.1')).statusCode).toBe(401);
    const limited = await clientAuth({ orgName: orgA.name, appName: appA, key: kA.key }, '10.3.0.1');
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error).toBe('rate-limited');
    expect(limited.headers['retry-after']).toBeDefined();
    expect((await clientAuth({ orgName: orgA.name, appName: appA, key: kA.key }, '10.3.0.2')).statusCode).toBe(200);
    await t.req('DELETE', `/be/v1/keys/${kA.id}`, { headers: adminA.headers });
    await t.req('DELETE', `/be/v1/keys/${kA2.id}`, { headers: adminA.headers });
  });

  it('/cdn: an app without keys is open; with keys it needs a valid token for its own files (query, __token__ or header)', async () => {
    const rel = `/cdn/dxf/${orgA.name}/${appA2}/release.json`;
    expect((await t.app.inject({ method: 'GET', url: rel })).statusCode).toBe(200);
    const k = await createKey(adminA.headers, appA2, 'cdn');
    const missing = await t.app.inject({ method: 'GET', url: rel });
    expect(missing.statusCode).toBe(403);
    expect(missing.json()).toMatchObject({ status: 'error', error: 'forbidden' });
    // A file that does not exist answers the same 403 (no oracle on the layout of a keyed app).
    expect((await t.app.inject({ method: 'GET', url: `/cdn/dxf/${orgA.name}/${appA2}/nope.bin` })).statusCode).toBe(403);
    const auth = (await clientAuth({ orgName: orgA.name, appName: appA2, key: k.key }, '10.4.0.1')).json();
    const token: string = auth.auth.token;
    const q = encodeURIComponent(token);
    const viaQuery = await t.app.inject({ method: 'GET', url: `${rel}?token=${q}` });
    expect(viaQuery.statusCode).toBe(200);
    expect(viaQuery.json().appName).toBe(appA2);
    expect((await t.app.inject({ method: 'GET', url: `${rel}?__token__=${q}` })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: rel, headers: { 'x-rockit-download-token': token } })).statusCode).toBe(200);
    const img = `/cdn/${auth.release.image.path}image.json`;
    const ranged = await t.app.inject({ method: 'GET', url: `${img}?token=${q}`, headers: { range: 'bytes=0-9' } });
    expect(ranged.statusCode).toBe(206);
    expect((await t.app.inject({ method: 'HEAD', url: img, headers: { 'x-rockit-download-token': token } })).statusCode).toBe(200);

    const tampered = token.replace(/hmac=(.)/, (_m, c: string) => `hmac=${c === '0' ? '1' : '0'}`);
    const widened = token.replace(`/cdn/dxf/${orgA.name}/${appA2}/*`, `/cdn/dxf/${orgA.name}/*`);
    for (const bad of [tampered, widened, 'st=1~exp=9999999999~acl=/cdn/*~hmac=' + '0'.repeat(64), 'garbage', '']) {
      const r = await t.app.inject({ method: 'GET', url: rel, headers: { 'x-rockit-download-token': bad } });
      expect(r.statusCode, bad).toBe(403);
      expect(r.json().error).toBe('forbidden');
    }
    // Another app's token of the same org: 403; a non-keyed app ignores tokens.
    const kOther = await createKey(adminA.headers, appA, 'other');
    const otherTok = (await clientAuth({ orgName: orgA.name, appName: appA, key: kOther.key }, '10.4.0.2')).json().auth.token;
    expect((await t.app.inject({ method: 'GET', url: rel, headers: { 'x-rockit-download-token': otherTok } })).json().message).toContain('other files');
    // Expired.
    t.clock.advance(601_000);
    const expired = await t.app.inject({ method: 'GET', url: rel, headers: { 'x-rockit-download-token': token } });
    expect(expired.statusCode).toBe(403);
    expect(expired.json().message).toContain('expired');
    // Deleting the last key opens the app again.
    await t.req('DELETE', `/be/v1/keys/${k.id}`, { headers: adminA.headers });
    expect((await t.app.inject({ method: 'GET', url: rel })).statusCode).toBe(200);
    await t.req('DELETE', `/be/v1/keys/${kOther.id}`, { headers: adminA.headers });
  });

  it('client auth answers a token per deployment with downloadAuth, signed with its key and bound to its prefix', async () => {
    const h = adminA.headers;
    const app = await publishedApp(t, h);
    const key = '00112233445566778899aabbccddeeff';
    const dep = uniqueName('dep');
    const d = await t.req('POST', '/be/v1/deployments', { headers: h, body: { name: dep, type: 'fs', fs: { path: fsFolder }, originPrefix: 'games', downloadAuth: { type: 'token', key } } });
    expect(d.statusCode, d.body).toBe(201);
    expect((await t.req('PATCH', '/be/v1/apps', { headers: h, body: { name: app, deployments: [dep] } })).statusCode).toBe(200);
    const k = await createKey(h, app);
    const j = (await clientAuth({ orgName: orgA.name, appName: app, key: k.key }, '10.5.0.1')).json();
    expect(j.origins).toHaveLength(1);
    expect(j.origins[0].deployment).toBe(dep);
    const now = Math.floor(t.clock.now() / 1000);
    const check = verifyDownloadToken(j.origins[0].token, key, now, `/games/dxf/${orgA.name}/${app}/0001/x`);
    expect(check.ok).toBe(true);
    expect(verifyDownloadToken(j.origins[0].token, key, now, `/games/dxf/${orgA.name}/other/0001/x`)).toMatchObject({ ok: false, reason: 'acl' });
    // The depot token is not signed with the deployment's key.
    expect(verifyDownloadToken(j.auth.token, key, now)).toMatchObject({ ok: false, reason: 'signature' });
    await t.req('PATCH', '/be/v1/apps', { headers: h, body: { name: app, deployments: [] } });
    await t.req('DELETE', `/be/v1/apps/${app}`, { headers: h });
    await t.req('DELETE', `/be/v1/deployments/${dep}`, { headers: h });
  }, 60_000);

  it('traces: binary and NDJSON, by token and by access key; coverage; list; consumption; deleting the app deletes them', async () => {
    const h = adminA.headers;
    const app = await publishedApp(t, h);
    const k = await createKey(h, app, 'traces');
    const token = (await clientAuth({ orgName: orgA.name, appName: app, key: k.key }, '10.6.0.1')).json().auth.token;
    const full = Buffer.from(encodeTrace(traceOf(orgA.name, app, [[0, 'game/data.bin', 0, 4096], [5, 'game/level.bin', 100, 1000], [9, 'game/data.bin', 4096, 4096]])));
    const r1 = await postTrace({ 'x-rockit-download-token': token }, full);
    expect(r1.statusCode, r1.body).toBe(202);
    expect(r1.json()).toMatchObject({ status: 'success', trace: { records: 3, coverage: 1 } });
    expect(r1.json().trace.id).toMatch(/^tr_[0-9A-Z]{26}$/);
    // Half of the bytes beyond the end of level.bin, one read of an unknown file: partial coverage.
    const partial = traceOf(orgA.name, app, [[0, 'game/level.bin', LEVEL - 500, 1000], [1, 'game/nope.bin', 0, 500], [2, 'game/data.bin', 0, 1000]], { buildId: 0 });
    const r2 = await postTrace({ 'x-rockit-download-key': k.key }, Buffer.from(encodeTrace(partial, { compress: false })));
    expect(r2.statusCode, r2.body).toBe(202);
    expect(r2.json().trace.coverage).toBeCloseTo(1500 / 2500, 4);
    // NDJSON, times out of order (stably sorted), plain.
    const nd = ndjson(orgA.name, app, [{ t: 7, path: 'game/data.bin', offset: 0, length: 100 }, { t: 3, path: 'game/level.bin', offset: 0, length: 100 }], { build: 1 });
    const r3 = await postTrace({ 'x-rockit-download-token': token }, nd, 'application/x-ndjson');
    expect(r3.statusCode, r3.body).toBe(202);
    expect(r3.json().trace).toMatchObject({ records: 2, coverage: 1 });

    const list = await t.req('GET', `/be/v1/traces?appName=${app}&order[]=created`, { headers: h });
    expect(list.statusCode).toBe(200);
    expect(list.json().total).toBe(3);
    const first = list.json().traces.find((x: any) => x.id === r1.json().trace.id);
    expect(first).toMatchObject({ appName: app, buildId: 1, dxfName: 'b0001-t000', sessionId: 's-1', firstSession: true, records: 3, readBytes: 9192, durationMs: 9, coverage: 1 });
    expect(first.sizeBytes).toBeGreaterThan(48);
    expect((await t.req('GET', `/be/v1/traces?appName=${app}&fields[]=id&limit=1`, { headers: h })).json().traces[0]).toEqual({ id: expect.any(String) });
    expect((await t.req('GET', '/be/v1/traces', { headers: h })).json()).toMatchObject({ error: 'missing-param', param: 'appName' });
    const sizes = list.json().traces.reduce((s: number, x: any) => s + x.sizeBytes, 0);
    const cons = (await t.req('GET', '/be/v1/consumption', { headers: h })).json();
    expect(cons.consumption.apps.find((a: any) => a.appName === app).tracesBytes).toBe(sizes);
    // Stored as the binary format (zstd body) under traces/{orgId}/{appId}/.
    const blobs = traceBlobs().filter((f) => f.includes(r1.json().trace.id));
    expect(blobs).toHaveLength(1);
    expect(fs.readFileSync(path.join(t.dataDir, 'blobs', 'traces', blobs[0])).subarray(0, 4).toString()).toBe('RKTR');

    const before = traceBlobs().length;
    const ids = list.json().traces.map((x: any) => x.id as string);
    expect((await t.req('DELETE', `/be/v1/apps/${app}`, { headers: h })).statusCode).toBe(200);
    expect(traceBlobs().length).toBe(before - 3);
    expect(await t.server.db.db.selectFrom('traces').select('id').where('id', 'in', ids).execute()).toEqual([]);
  }, 60_000);

  it('deleting an org with prune removes its traces (rows and blobs); other orgs keep theirs', async () => {
    const org = await createOrg(t);
    const admin = await loginAdmin(t, org);
    const app = await publishedApp(t, admin.headers);
    const k = await createKey(admin.headers, app);
    const tr = Buffer.from(encodeTrace(traceOf(org.name, app, [[0, 'game/data.bin', 0, 100]])));
    expect((await postTrace({ 'x-rockit-download-key': k.key }, tr)).statusCode).toBe(202);
    const kB = await createKey(adminB.headers, appB);
    expect((await postTrace({ 'x-rockit-download-key': kB.key }, Buffer.from(encodeTrace(traceOf(orgB.name, appB, [[0, 'game/data.bin', 0, 100]]))))).statusCode).toBe(202);
    const orgId = (await t.server.db.db.selectFrom('orgs').select('id').where('name', '=', org.name).executeTakeFirstOrThrow()).id;
    const orgBId = (await t.server.db.db.selectFrom('orgs').select('id').where('name', '=', orgB.name).executeTakeFirstOrThrow()).id;
    expect(traceBlobs().filter((f) => f.startsWith(orgId))).toHaveLength(1);
    const del = await t.req('DELETE', `/adm/v1/orgs/${org.name}?prune=true`, { headers: t.admin });
    expect(del.statusCode, del.body).toBe(200);
    expect(traceBlobs().filter((f) => f.startsWith(orgId))).toEqual([]);
    expect(await t.server.db.db.selectFrom('traces').select('id').where('org_id', '=', orgId).execute()).toEqual([]);
    expect(traceBlobs().filter((f) => f.startsWith(orgBId)).length).toBeGreaterThan(0);
    await t.req('DELETE', `/be/v1/keys/${kB.id}`, { headers: adminB.headers });
  }, 60_000);

  it('traces: hostile and wrong inputs are refused with the envelope and nothing is stored', async () => {
    const h = adminA.headers;
    const k = await createKey(h, appA, 'hostile');
    const token = (await clientAuth({ orgName: orgA.name, appName: appA, key: k.key }, '10.7.0.1')).json().auth.token;
    const T = { 'x-rockit-download-token': token };
    const good = Buffer.from(encodeTrace(traceOf(orgA.name, appA, [[0, 'game/data.bin', 0, 100]]), { compress: false }));
    const before = await traceCount();
    const blobsBefore = traceBlobs().length;
    const wrongVersion = Buffer.from(good);
    wrongVersion.writeUInt16LE(9, 4);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 1] ^= 0xff;
    const cases: Array<[string, Record<string, string>, Buffer | string, string, number, Record<string, unknown>]> = [
      ['truncated', T, good.subarray(0, good.length - 3), 'application/octet-stream', 400, { error: 'invalid-param', param: 'body', reason: 'trace-truncated' }],
      ['wrong version', T, wrongVersion, 'application/octet-stream', 400, { reason: 'trace-unsupported-version' }],
      ['corrupt', T, flipped, 'application/octet-stream', 400, { reason: 'trace-checksum-mismatch' }],
      ['not a trace', T, Buffer.from('hello world, not a trace'), 'application/octet-stream', 400, { reason: 'trace-bad-magic' }],
      ['empty', T, Buffer.alloc(0), 'application/octet-stream', 400, { error: 'missing-param', param: 'body' }],
      ['oversized', T, Buffer.alloc(64 * 1024 + 1), 'application/octet-stream', 413, { error: 'payload-too-large' }],
      ['paths outside the build', T, Buffer.from(encodeTrace(traceOf(orgA.name, appA, [[0, 'etc/passwd', 0, 100], [1, 'game/data.bin', DATA + 10, 100]]))), 'application/octet-stream', 400, { error: 'invalid-param', param: 'records' }],
      ['huge offsets', T, Buffer.from(encodeTrace(traceOf(orgA.name, appA, [[0, 'game/data.bin', 2 ** 52, 2 ** 20]]))), 'application/octet-stream', 400, { param: 'body' }],
      ['no records', T, Buffer.from(encodeTrace(traceOf(orgA.name, appA, []))), 'application/octet-stream', 400, { param: 'records' }],
      ['deleted build', T, Buffer.from(encodeTrace(traceOf(orgA.name, appA, [[0, 'game/data.bin', 0, 10]], { buildId: 7 }))), 'application/octet-stream', 400, { param: 'build' }],
      ['unknown image', T, Buffer.from(encodeTrace(traceOf(orgA.name, appA, [[0, 'game/data.bin', 0, 10]], { dxfName: 'b0001-t009' }))), 'application/octet-stream', 400, { param: 'dxf' }],
      ['other app of the org', T, Buffer.from(encodeTrace(traceOf(orgA.name, appA2, [[0, 'game/data.bin', 0, 10]]))), 'application/octet-stream', 403, { error: 'forbidden' }],
      ['ndjson times negative', T, ndjson(orgA.name, appA, [{ t: -1, path: 'game/data.bin', offset: 0, length: 1 }]), 'application/x-ndjson', 400, { reason: 'trace-invalid' }],
      ['ndjson bad path', T, ndjson(orgA.name, appA, [{ t: 1, path: '../x', offset: 0, length: 1 }]), 'application/x-ndjson', 400, { reason: 'trace-invalid' }],
      ['ndjson wrong version', T, ndjson(orgA.name, appA, [], { version: 2 }), 'application/x-ndjson', 400, { reason: 'trace-unsupported-version' }],
      ['ndjson truncated', T, ndjson(orgA.name, appA, [{ t: 1, path: 'game/data.bin', offset: 0, length: 1 }]).slice(0, -8), 'application/x-ndjson', 400, { error: 'invalid-param', param: 'body' }],
      ['ndjson unknown field', T, ndjson(orgA.name, appA, [{ t: 1, path: 'game/data.bin', offset: 0, length: 1, x: 1 }]), 'application/x-ndjson', 400, { reason: 'trace-invalid' }],
      ['ndjson too late', T, ndjson(orgA.name, appA, [{ t: 8 * 24 * 3600 * 1000, path: 'game/data.bin', offset: 0, length: 1 }]), 'application/x-ndjson', 400, { reason: 'trace-limit-exceeded' }],
      ['no credentials', {}, good, 'application/octet-stream', 401, { error: 'token-missing' }],
      ['both credentials', { ...T, 'x-rockit-download-key': k.key }, good, 'application/octet-stream', 400, { error: 'conflicting-credentials' }],
      ['bad token', { 'x-rockit-download-token': token.slice(0, -2) + '00' }, good, 'application/octet-stream', 401, { error: 'token-invalid' }],
      ['bad key', { 'x-rockit-download-key': 'rkdk_nope' }, good, 'application/octet-stream', 401, { error: 'invalid-credentials' }],
      ['json body', T, '{}', 'application/json', 400, {}],
      ['text body', T, 'x', 'text/plain', 415, { error: 'unsupported-media-type' }],
    ];
    for (const [what, headers, body, ct, status, want] of cases) {
      const r = await postTrace(headers, body, ct);
      expect(r.statusCode, `${what}: ${r.body}`).toBe(status);
      expect(r.json(), what).toMatchObject({ status: 'error', ...want });
    }
    expect(await traceCount()).toBe(before);
    expect(traceBlobs().length).toBe(blobsBefore);
    // Expired token: 401 token-expired.
    t.clock.advance(601_000);
    expect((await postTrace(T, good)).json()).toMatchObject({ error: 'token-expired' });
    // The good trace still goes in with the key.
    expect((await postTrace({ 'x-rockit-download-key': k.key }, good)).statusCode).toBe(202);
    await t.req('DELETE', `/be/v1/keys/${k.id}`, { headers: h });
  }, 60_000);
});

describe.each(TEST_DIALECTS.slice(0, 1))('OpenAPI of the FastStart routes (%s)', (dialect) => {
  it('documents every new route with its statuses', async () => {
    const t = await createTestServer({ dialect });
    try {
      const doc = (await t.req('GET', '/openapi.json')).json();
      for (const [p, methods] of [
        ['/be/v1/keys', ['get', 'post']], ['/be/v1/keys/{id}', ['get', 'delete']], ['/client/v1/auth', ['post']],
        ['/client/v1/traces', ['post']], ['/be/v1/traces', ['get']],
      ] as const) {
        for (const m of methods) {
          const op = doc.paths[p]?.[m];
          expect(op, `${m} ${p}`).toBeDefined();
          expect(Object.keys(op.responses), `${m} ${p}`).toEqual(expect.arrayContaining(['400', '404', '500']));
        }
      }
    } finally {
      await t.close();
    }
  });
});

describe('download tokens (EdgeAuth 2.0 form)', () => {
  it('signs and verifies; ACL entries with * are prefixes, others exact', () => {
    const key = 'abcdef0123456789abcdef0123456789';
    const tok = signDownloadToken({ st: 100, exp: 200, acl: ['/cdn/dxf/o/a/*', '/cdn/pat/o/a/*'] }, key);
    expect(tok).toMatch(/^st=100~exp=200~acl=\/cdn\/dxf\/o\/a\/\*!\/cdn\/pat\/o\/a\/\*~hmac=[0-9a-f]{64}$/);
    expect(verifyDownloadToken(tok, key, 150, '/cdn/pat/o/a/0002/0001/p')).toMatchObject({ ok: true });
    expect(verifyDownloadToken(tok, key, 150, '/cdn/dxf/o/ab/x')).toMatchObject({ ok: false, reason: 'acl' });
    expect(verifyDownloadToken(tok, key, 200)).toMatchObject({ ok: false, reason: 'expired' });
    expect(verifyDownloadToken(tok, key, 10)).toMatchObject({ ok: false, reason: 'not-yet-valid' });
    expect(verifyDownloadToken(tok, 'ff' + key.slice(2), 150)).toMatchObject({ ok: false, reason: 'signature' });
    expect(verifyDownloadToken(tok + 'x', key, 150)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verifyDownloadToken('st=1~st=2~exp=3~acl=/*~hmac=' + '0'.repeat(64), key, 150)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(aclCovers(['/a/b'], '/a/b')).toBe(true);
    expect(aclCovers(['/a/b'], '/a/bc')).toBe(false);
    expect(() => signDownloadToken({ st: 1, exp: 2, acl: ['/a!b'] }, key)).toThrow();
  });
});
