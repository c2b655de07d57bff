// Issue 8 item 9: after kill -9 mid-mkraw and a resumed success, `work/mkraw/mkraw-NNNN-*` stayed
// forever; `work/mkraw/image-cache/<org>` survived org prune and app delete. Now orphaned work folders
// are swept at start and after each task (never one a running task of this process uses), and the
// image cache goes with its app and its org. Through the real binary, with a real kill -9.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECTS, binariesBuilt, call, newApp, newOrg, startEdge, uploadBuild, waitImport, type EdgeProcess } from './support.js';

/** A ustar header block. */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

/** A plain tar of random (incompressible) files: `count` files of `size` bytes. */
function randomTar(count: number, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    parts.push(tarHeader(`game/f${i}.bin`, size), randomBytes(size), Buffer.alloc((512 - (size % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const scratchFolders = (edge: EdgeProcess): string[] => {
  const dir = path.join(edge.dataDir, 'work', 'mkraw');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('mkraw-')) : [];
};
const cacheDir = (edge: EdgeProcess, ...parts: string[]): string => path.join(edge.dataDir, 'work', 'mkraw', 'image-cache', ...parts);

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!binariesBuilt())('hostile: files left behind (issue 8 item 9)', () => {
  for (const dialect of TEST_DIALECTS) {
    describe(dialect, () => {
      let edge: EdgeProcess;
      let user: Record<string, string>;
      beforeAll(async () => {
        edge = await startEdge({ dialect, env: { ROCKIT_LEASE_SECONDS: '5', ROCKIT_WORKER_CONCURRENCY: '1', ROCKIT_TASK_MAX_ATTEMPTS: '5' } });
        user = await newOrg(edge, 'orphan_org');
        await newApp(edge, user, 'game');
        await newApp(edge, user, 'other');
      }, 120_000);
      afterAll(async () => edge?.dispose());

      it('kill -9 mid-mkraw, restart, resumed success: no mkraw scratch folder is left', async () => {
        // Big enough that mkraw is still busy when its scratch folder shows up.
        const dltar = await uploadBuild(edge, user, 'game', randomTar(48, 1024 * 1024));
        await waitUntil('mkraw to create its scratch folder', () => scratchFolders(edge).length > 0);
        const leftover = scratchFolders(edge);
        await edge.kill9();
        expect(scratchFolders(edge)).toEqual(leftover); // a kill -9 cleans nothing up

        edge = await edge.restart();
        // Swept at start: the folder belongs to no running task of this (new) process.
        for (const name of leftover) expect(existsSync(path.join(edge.dataDir, 'work', 'mkraw', name)), name).toBe(false);
        // The task is taken over after its lease lapses and succeeds; its own scratch folder is gone too.
        const last = await waitImport(edge, user, dltar);
        expect(last.status, JSON.stringify(last)).toBe('succeeded');
        expect(scratchFolders(edge)).toEqual([]);
        expect(existsSync(cacheDir(edge, 'orphan_org', 'game'))).toBe(true);
      }, 300_000);

      it('an orphaned folder found while running is swept after the next mkraw', async () => {
        const orphan = path.join(edge.dataDir, 'work', 'mkraw', 'mkraw-0042-0123456789ab');
        await mkdir(path.join(orphan, 'image'), { recursive: true });
        await writeFile(path.join(orphan, 'image', 'pack-0000'), randomBytes(4096));
        const last = await waitImport(edge, user, await uploadBuild(edge, user, 'other', randomTar(2, 4096)));
        expect(last.status).toBe('succeeded');
        await waitUntil('the sweep after the task', () => !existsSync(orphan));
        expect(scratchFolders(edge)).toEqual([]);
      }, 300_000);

      it('deleting an app drops its image cache; deleting the org (prune) drops the org\'s cache', async () => {
        expect(existsSync(cacheDir(edge, 'orphan_org', 'other'))).toBe(true);
        const del = await call(edge.base, 'DELETE', '/be/v1/apps/other', user);
        expect(del.status, JSON.stringify(del.json)).toBe(200);
        expect(existsSync(cacheDir(edge, 'orphan_org', 'other'))).toBe(false);
        expect(existsSync(cacheDir(edge, 'orphan_org', 'game'))).toBe(true);

        const gone = await call(edge.base, 'DELETE', '/adm/v1/orgs/orphan_org?prune=true', edge.admin);
        expect(gone.status, JSON.stringify(gone.json)).toBe(200);
        expect(existsSync(cacheDir(edge, 'orphan_org'))).toBe(false);
      }, 120_000);

      it('an org deleted without prune leaves no cache behind after the next start', async () => {
        const u = await newOrg(edge, 'orphan_org2');
        await newApp(edge, u, 'gg');
        const last = await waitImport(edge, u, await uploadBuild(edge, u, 'gg', randomTar(1, 1000)));
        expect(last.status).toBe('succeeded');
        expect(existsSync(cacheDir(edge, 'orphan_org2', 'gg'))).toBe(true);
        const gone = await call(edge.base, 'DELETE', '/adm/v1/orgs/orphan_org2', edge.admin);
        expect(gone.status).toBe(200);
        await edge.stop();
        edge = await edge.restart();
        expect(existsSync(cacheDir(edge, 'orphan_org2'))).toBe(false);
      }, 300_000);
    });
  }
});
