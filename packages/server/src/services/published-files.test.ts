import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createDepotOrigin } from '../publish/origin.js';
import { createFsBlobStore } from '../storage/fs-blob-store.js';
import { createOriginFileOps } from './published-files.js';

describe('createOriginFileOps', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-files-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const put = (root: string, key: string) => {
    const f = path.join(root, ...key.split('/'));
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, 'x');
    return f;
  };

  it('removes exactly the app\'s dxf/ and pat/ folders from the depot and each deployment', async () => {
    const blobs = tmp();
    const origin = tmp();
    const ops = createOriginFileOps({ depot: createDepotOrigin(createFsBlobStore({ root: blobs, fsync: false })) });
    const depotImage = put(blobs, 'cdn/dxf/acme/demo/0001/b0001-t000/m.bin');
    const depotOther = put(blobs, 'cdn/dxf/acme/demo2/release.json');
    const upload = put(blobs, 'uploads/acme/demo/t_1.tar');
    const originPatch = put(origin, 'pre/pat/acme/demo/0002/0001/p.bin');
    const otherOrg = put(origin, 'pre/dxf/other/demo/release.json');
    const report = await ops.removeAppFiles('acme', 'demo', [{ name: 'cdn_eu', settings: { type: 'fs', originPrefix: 'pre', fs: { path: origin } } }]);
    expect(report).toEqual({ ok: true, failures: [] });
    expect([depotImage, originPatch].map((f) => fs.existsSync(f))).toEqual([false, false]);
    expect([depotOther, upload, otherOrg].map((f) => fs.existsSync(f))).toEqual([true, true, true]);
    // Idempotent.
    expect(await ops.removeAppFiles('acme', 'demo', [{ name: 'cdn_eu', settings: { type: 'fs', originPrefix: 'pre', fs: { path: origin } } }])).toEqual({ ok: true, failures: [] });
  });

  it('reports an origin it cannot build or reach and carries on with the others', async () => {
    const origin = tmp();
    const kept = put(origin, 'dxf/acme/demo/release.json');
    const ops = createOriginFileOps();
    const report = await ops.removeAppFiles('acme', 'demo', [
      { name: 'broken', settings: { type: 's3', s3: { endpoint: 'http://h/with/path', region: 'r', bucket: 'bkt', accessKeyId: 'a', secretAccessKey: 'topsecret' } } },
      { name: 'good', settings: { type: 'fs', fs: { path: origin } } },
    ]);
    expect(report.ok).toBe(false);
    expect(report.failures).toEqual([{ origin: 'broken', message: expect.any(String) }]);
    expect(report.failures[0].message).not.toContain('topsecret');
    expect(fs.existsSync(kept)).toBe(false);
  });

  it('removeDeploymentFiles removes each named app of the org, nothing else', async () => {
    const origin = tmp();
    const a = put(origin, 'dxf/acme/one/release.json');
    const b = put(origin, 'pat/acme/two/0002/0001/p.bin');
    const c = put(origin, 'dxf/acme/three/release.json');
    const ops = createOriginFileOps();
    expect(await ops.removeDeploymentFiles('acme', { name: 'd', settings: { type: 'fs', fs: { path: origin } } }, ['one', 'two'])).toEqual({ ok: true, failures: [] });
    expect([a, b, c].map((f) => fs.existsSync(f))).toEqual([false, false, true]);
  });

  it('checkOrigin never creates a missing fs folder and reports settings problems', async () => {
    const ops = createOriginFileOps();
    const missing = path.join(tmp(), 'nope');
    const r = await ops.checkOrigin({ type: 'fs', fs: { path: missing } });
    expect(r).toMatchObject({ ok: false, code: 'not-found' });
    expect(fs.existsSync(missing)).toBe(false);
    expect((await ops.checkOrigin({ type: 'fs', fs: { path: tmp() } })).ok).toBe(true);
    expect(await ops.checkOrigin({ type: 'fs', fs: { path: 'relative' } })).toMatchObject({ ok: false, code: 'invalid-config' });
  });
});
