import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrigin } from '../publish/origin.js';
import { createOrg, loginAdmin, uniqueName, type Session } from '../test-support/factories.js';
import { startS3Server, type S3TestServer } from '../test-support/s3.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

/** `verify: true` runs a real write/read/delete round trip against the origin (a folder, an S3 server). */
describe.each(TEST_DIALECTS)('deployment verify against real origins (%s)', (dialect) => {
  let t: TestServer;
  let s3: S3TestServer;
  let admin: Session;
  let orgName: string;
  let root: string;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-verify-'));
    [t, s3] = await Promise.all([
      createTestServer({ dialect, env: { ROCKIT_NO_WORKER: 'true', ROCKIT_FS_DEPLOYMENT_ROOTS: root, ROCKIT_ALLOW_PRIVATE_ADDRESSES: 'true' } }),
      startS3Server({ buckets: ['cdn-bucket'] }),
    ]);
    const org = await createOrg(t);
    orgName = org.name;
    admin = await loginAdmin(t, org);
  });
  afterAll(async () => {
    await Promise.all([t?.close(), s3?.stop()]);
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });
  const req = (method: string, url: string, body?: unknown) => t.req(method, url, { headers: admin.headers, body });
  const s3Settings = (over: Record<string, unknown> = {}) => ({
    endpoint: s3.endpoint, region: s3.region, bucket: 'cdn-bucket', accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey,
    forcePathStyle: true, ...over,
  });

  it('fs: an existing folder passes and the status records it; a missing folder or a file refuses the request', async () => {
    const folder = fs.mkdtempSync(path.join(root, 'fs-'));
    const name = uniqueName('fsv');
    const ok = await req('POST', '/be/v1/deployments', { name, type: 'fs', fs: { path: folder }, verify: true });
    expect(ok.statusCode, ok.body).toBe(201);
    expect(ok.json().deployment).toMatchObject({ status: 'ok', checked: Math.floor(t.clock.now() / 1000) });
    expect(ok.json().deployment.message).toMatch(/write, read, range read and delete work/);
    expect(fs.readdirSync(folder).flatMap((d) => fs.readdirSync(path.join(folder, d)))).toEqual([]);

    const missing = path.join(root, 'does-not-exist');
    const bad = await req('POST', '/be/v1/deployments', { name: uniqueName('fsv'), type: 'fs', fs: { path: missing }, verify: true });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'invalid-param', param: 'fs' });
    expect(bad.json().message).toContain('verification failed');
    expect(fs.existsSync(missing)).toBe(false);
    expect((await req('GET', '/be/v1/deployments?limit=1000')).json().deployments.map((d: any) => d.name)).toEqual([name]);

    // ROCKIT_FS_DEPLOYMENT_ROOTS confines fs deployments (a sibling with the same prefix is outside).
    for (const outside of [os.tmpdir(), `${root}-evil`, path.join(root, '..', 'x')]) {
      const r = await req('POST', '/be/v1/deployments', { name: uniqueName('fsv'), type: 'fs', fs: { path: outside } });
      expect(r.json(), outside).toMatchObject({ error: 'invalid-param', param: 'fs.path' });
    }

    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, 'x');
    const patched = await req('PATCH', '/be/v1/deployments', { name, fs: { path: file }, verify: true });
    expect(patched.json()).toMatchObject({ error: 'invalid-param', param: 'fs' });
    expect((await req('GET', `/be/v1/deployments/${name}`)).json().deployment.fs.path).toBe(folder);
  });

  it('s3: good credentials pass; wrong credentials or a missing bucket refuse the request without echoing the secret', async () => {
    const name = uniqueName('s3v');
    const ok = await req('POST', '/be/v1/deployments', { name, type: 's3', originPrefix: 'edge', s3: s3Settings(), verify: true });
    expect(ok.statusCode, ok.body).toBe(201);
    expect(ok.json().deployment).toMatchObject({ status: 'ok', s3: { bucket: 'cdn-bucket', forcePathStyle: true } });
    expect(s3.requests().some((r) => r.startsWith('PUT /cdn-bucket/edge/rockit-self-check/'))).toBe(true);

    const wrong = await req('POST', '/be/v1/deployments', {
      name: uniqueName('s3v'), type: 's3', s3: s3Settings(s3.wrongCredentials), verify: true,
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({ error: 'invalid-param', param: 's3', check: 'access-denied' });
    expect(wrong.body).not.toContain(s3.wrongCredentials.secretAccessKey);

    const noBucket = await req('POST', '/be/v1/deployments', { name: uniqueName('s3v'), type: 's3', s3: s3Settings({ bucket: 'no-such-bucket' }), verify: true });
    expect(noBucket.json()).toMatchObject({ error: 'invalid-param', param: 's3' });

    // PATCH with wrong credentials and verify: refused, nothing changes; with verify alone: the status is refreshed.
    const badPatch = await req('PATCH', '/be/v1/deployments', { name, s3: { accessKeyId: s3.wrongCredentials.accessKeyId }, verify: true });
    expect(badPatch.json()).toMatchObject({ error: 'invalid-param', param: 's3' });
    t.clock.advance(60_000);
    const refreshed = await req('PATCH', '/be/v1/deployments', { name, verify: true });
    expect(refreshed.statusCode, refreshed.body).toBe(200);
    expect(refreshed.json().deployment).toMatchObject({ status: 'ok', checked: Math.floor(t.clock.now() / 1000), s3: { accessKeyId: s3.accessKeyId } });

    // Without verify, changed settings reset the status to "not checked".
    const unchecked = await req('PATCH', '/be/v1/deployments', { name, s3: { accessKeyId: s3.wrongCredentials.accessKeyId } });
    expect(unchecked.json().deployment).toMatchObject({ status: 'ok', checked: null, s3: { accessKeyId: s3.wrongCredentials.accessKeyId } });
  });

  it('s3: deleting an app and then the deployment removes the published objects (with the stored, encrypted secret)', async () => {
    const name = uniqueName('s3d');
    expect((await req('POST', '/be/v1/deployments', { name, type: 's3', originPrefix: 'pub', s3: s3Settings() })).statusCode).toBe(201);
    const keep = uniqueName('keep');
    const gone = uniqueName('gone');
    await req('POST', '/be/v1/apps', { name: keep, label: 'K', deployments: [name] });
    await req('POST', '/be/v1/apps', { name: gone, label: 'G', deployments: [name] });
    const origin = createOrigin({ type: 's3', originPrefix: 'pub', s3: s3Settings() });
    try {
      for (const app of [keep, gone]) {
        await origin.store.put(`dxf/${orgName}/${app}/release.json`, Buffer.from('{}'));
        await origin.store.put(`pat/${orgName}/${app}/0002/0001/p.bin`, Buffer.from('p'));
      }
      const del = await req('DELETE', `/be/v1/apps/${gone}`);
      expect(del.json()).toEqual({ status: 'success', cleanup: { ok: true, failures: [] } });
      expect(await origin.store.head(`dxf/${orgName}/${gone}/release.json`)).toBeNull();
      expect(await origin.store.head(`pat/${orgName}/${gone}/0002/0001/p.bin`)).toBeNull();
      expect(await origin.store.head(`dxf/${orgName}/${keep}/release.json`)).not.toBeNull();

      expect((await req('DELETE', `/be/v1/deployments/${name}`)).json().error).toBe('in-use');
      await req('DELETE', `/be/v1/apps/${keep}`);
      expect(await origin.store.head(`dxf/${orgName}/${keep}/release.json`)).toBeNull();
      await origin.store.put(`dxf/${orgName}/${keep}/late.json`, Buffer.from('{}'));
      await req('POST', '/be/v1/apps', { name: keep, label: 'K again' });
      const delDep = await req('DELETE', `/be/v1/deployments/${name}`);
      expect(delDep.json()).toEqual({ status: 'success', cleanup: { ok: true, failures: [] } });
      expect(await origin.store.head(`dxf/${orgName}/${keep}/late.json`)).toBeNull();
    } finally {
      await origin.close();
    }
  });
});
