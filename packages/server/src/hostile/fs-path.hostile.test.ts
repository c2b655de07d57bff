/**
 * Hostile test, issue 8 item 6: fs deployment paths are judged by their real path, not their text.
 * `/proc/self/root/<data>/blobs`, a symlink into the data folder, a symlink out of the allowed
 * folders and NUL in `fs.path` are refused (400 invalid-param `fs.path`); a folder swapped for a
 * symlink after it was accepted is refused again when the server writes there (verify, publish).
 * Through the real binary (SQLite).
 */
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orgAdmin, startRealServer, uniqueName, type RealServer } from './support-h8b.js';

describe('hostile: fs deployment paths (real binary)', () => {
  let server: RealServer;
  let org: { name: string; headers: Record<string, string> };
  let work: string;
  let root: string;
  let dataDir: string;
  const create = (fsPath: string, extra: Record<string, unknown> = {}) =>
    server.req('POST', '/be/v1/deployments', { headers: org.headers, body: { name: uniqueName('d'), type: 'fs', fs: { path: fsPath }, ...extra } });

  beforeAll(async () => {
    work = realpathSync(mkdtempSync(path.join(tmpdir(), 'rockit-fs-hostile-')));
    root = path.join(work, 'sites');
    mkdirSync(root);
    dataDir = path.join(work, 'data');
    mkdirSync(dataDir);
    server = await startRealServer({ dataDir, env: { ROCKIT_FS_DEPLOYMENT_ROOTS: root } });
    org = await orgAdmin(server);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('accepts a plain folder inside the allowed root', async () => {
    mkdirSync(path.join(root, 'plain'));
    const r = await create(path.join(root, 'plain'), { verify: true });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  });

  it('refuses paths that reach the data folder or leave the allowed root through symlinks, /proc or NUL', async () => {
    symlinkSync(dataDir, path.join(root, 'to-data'));
    symlinkSync(work, path.join(root, 'to-work'));
    const hostile = [
      `/proc/self/root${dataDir}/blobs`,
      path.join(root, 'to-data'),
      path.join(root, 'to-data', 'blobs', 'new', 'folder'),
      path.join(root, 'to-work', 'data'),
      path.join(root, 'x\u0000y'),
      `${root}/a/../../data`,
    ];
    for (const p of hostile) {
      const r = await create(p);
      expect(r.status, `${JSON.stringify(p)}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body).toMatchObject({ error: 'invalid-param', param: 'fs.path' });
    }
  });

  it('judges by real path both ways: /proc/self/root/<root>/x is the root\'s folder x', async () => {
    mkdirSync(path.join(root, 'x'));
    const r = await create(`/proc/self/root${root}/x`);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  });

  it('re-checks the real path when writing: a folder swapped for a symlink into the data folder is refused', async () => {
    const site = path.join(root, 'swapped');
    mkdirSync(site);
    const name = uniqueName('d');
    const created = await server.req('POST', '/be/v1/deployments', { headers: org.headers, body: { name, type: 'fs', fs: { path: site } } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    rmSync(site, { recursive: true });
    symlinkSync(dataDir, site);
    const r = await server.req('PATCH', '/be/v1/deployments', { headers: org.headers, body: { name, verify: true } });
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body).toMatchObject({ error: 'invalid-param' });
    expect(existsSync(path.join(dataDir, 'rockit-self-check'))).toBe(false);
  });
});

describe('hostile: fs deployment paths without ROCKIT_FS_DEPLOYMENT_ROOTS (real binary)', () => {
  let server: RealServer;
  let org: { name: string; headers: Record<string, string> };
  let work: string;
  let dataDir: string;

  beforeAll(async () => {
    work = realpathSync(mkdtempSync(path.join(tmpdir(), 'rockit-fs-hostile-')));
    dataDir = path.join(work, 'data');
    mkdirSync(dataDir);
    server = await startRealServer({ dataDir });
    org = await orgAdmin(server);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('refuses the data folder however it is spelt, and an origin prefix that leads into it', async () => {
    symlinkSync(work, path.join(work, 'alias'));
    const cases: Array<{ fsPath: string; originPrefix?: string }> = [
      { fsPath: `/proc/self/root${dataDir}/blobs` },
      { fsPath: `/proc/self/root${dataDir}` },
      { fsPath: `/proc/${server.proc.pid}/root${dataDir}/blobs/cdn` },
      { fsPath: path.join(work, 'alias', 'data', 'blobs') },
      { fsPath: `${dataDir}//blobs` },
      { fsPath: work, originPrefix: 'data/blobs' },
    ];
    for (const c of cases) {
      const r = await server.req('POST', '/be/v1/deployments', {
        headers: org.headers,
        body: { name: uniqueName('d'), type: 'fs', fs: { path: c.fsPath }, ...(c.originPrefix ? { originPrefix: c.originPrefix } : {}) },
      });
      expect(r.status, `${JSON.stringify(c)}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body).toMatchObject({ error: 'invalid-param', param: 'fs.path' });
    }
    const ok = await server.req('POST', '/be/v1/deployments', { headers: org.headers, body: { name: uniqueName('d'), type: 'fs', fs: { path: path.join(work, 'site') } } });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
  });
});
