// Issue 8 item 12: `POST /adm/v1/hello {maintenance:true}` and readiness ran an empty list of
// self-checks in the real binary (only a test injected one). Now the binary probes the blob store and
// every deployment's origin (write, read back, delete), and /srv/v1/health probes the database and the
// blob store: a broken store fails both. Through the real binary.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECTS, binariesBuilt, call, ended, newOrg, startEdge, type EdgeProcess } from './support.js';

async function hello(edge: EdgeProcess): Promise<any> {
  const r = await call(edge.base, 'POST', '/adm/v1/hello', edge.admin, { message: 'checks', maintenance: true });
  expect(r.status, JSON.stringify(r.json)).toBe(202);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const t = await call(edge.base, 'GET', `/adm/v1/tasks/${r.json.task.name}`, edge.admin);
    if (t.status === 200 && ended(t.json.task)) return t.json.task;
    if (Date.now() > deadline) throw new Error(`hello did not end: ${JSON.stringify(t.json)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

describe.skipIf(!binariesBuilt())('hostile: self-checks that can fail (issue 8 item 12)', () => {
  for (const dialect of TEST_DIALECTS) {
    describe(dialect, () => {
      let edge: EdgeProcess;
      let user: Record<string, string>;
      let origin: string;
      beforeAll(async () => {
        edge = await startEdge({ dialect, env: { ROCKIT_TASK_MAX_ATTEMPTS: '1' } });
        // Outside the data folder (an fs deployment may not point into it).
        origin = path.join(await mkdtemp(path.join(os.tmpdir(), 'rockit-hostile-origin-')), 'cdn1');
        user = await newOrg(edge, 'checks_org');
        await mkdir(origin, { recursive: true });
        const d = await call(edge.base, 'POST', '/be/v1/deployments', user, { name: 'cdn1', type: 'fs', fs: { path: origin } });
        expect(d.status, JSON.stringify(d.json)).toBe(201);
      }, 120_000);
      afterAll(async () => {
        await edge?.dispose();
        if (origin) await rm(path.dirname(origin), { recursive: true, force: true });
      });

      it('a healthy installation: hello runs a real check of the blob store and of each origin; health probes the blob store', async () => {
        const task = await hello(edge);
        expect(task.status, JSON.stringify(task)).toBe('succeeded');
        const names = (task.result.checks as Array<{ name: string; ok: boolean }>).map((c) => c.name);
        expect(names).toEqual(['blob-store', 'deployment checks_org/cdn1']);
        expect(task.result.checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
        const h = await call(edge.base, 'GET', '/srv/v1/health', {});
        expect(h.status).toBe(200);
        expect(h.json.health.database).toBe('ok');
        expect(h.json.health.checks).toEqual([{ name: 'blob-store', ok: true }]);
      });

      it('a broken origin fails the maintenance hello, naming it; readiness does not depend on origins', async () => {
        await rm(origin, { recursive: true, force: true });
        await writeFile(origin, 'not a folder');
        try {
          const task = await hello(edge);
          expect(task.status).toBe('failed');
          expect(task.error.message).toContain('deployment checks_org/cdn1');
          const h = await call(edge.base, 'GET', '/srv/v1/health', {});
          expect(h.status).toBe(200);
        } finally {
          await rm(origin, { force: true });
          await mkdir(origin, { recursive: true });
        }
      });

      it('a broken blob store fails the maintenance hello and readiness (503)', async () => {
        const blobs = path.join(edge.dataDir, 'blobs');
        await rm(blobs, { recursive: true, force: true });
        await writeFile(blobs, 'the blob store folder is gone');
        try {
          const h = await call(edge.base, 'GET', '/srv/v1/health', {});
          expect(h.status, JSON.stringify(h.json)).toBe(503);
          expect(h.json.error).toBe('unavailable');
          expect(h.json.health.database).toBe('ok');
          expect(h.json.health.checks).toEqual([{ name: 'blob-store', ok: false, message: expect.any(String) }]);
          const task = await hello(edge);
          expect(task.status).toBe('failed');
          expect(task.error.message).toContain('blob-store');
        } finally {
          await rm(blobs, { force: true });
          await mkdir(blobs, { recursive: true });
        }
        const again = await call(edge.base, 'GET', '/srv/v1/health', {});
        expect(again.status).toBe(200);
      });
    });
  }
});
