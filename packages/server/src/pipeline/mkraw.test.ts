import { readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { applyPatch, extractImage } from '@rockit/engine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FsBlobStore } from '../storage/fs-blob-store.js';
import { StepError } from './errors.js';
import { discardBuild, makeRelease, type MakeReleaseOptions } from './mkraw.js';
import { makeTar, makeTempDir, pseudoRandomBytes, type TarEntrySpec } from './test-support/fixtures.js';

/** Every entry of a folder: file bytes, symlink targets, dirs; plus the exec bit of files. */
async function readTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(dir: string, rel: string): Promise<void> {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const abs = join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) out[r] = `link:${await readlink(abs)}`;
      else if (e.isDirectory()) {
        out[r] = 'dir';
        await walk(abs, r);
      } else {
        const exec = ((await stat(abs)).mode & 0o100) !== 0;
        out[r] = `${exec ? 'x' : '-'}:${(await readFile(abs)).toString('base64')}`;
      }
    }
  }
  await walk(root, '');
  return out;
}

async function listKeys(store: FsBlobStore, prefix: string): Promise<Array<[string, number]>> {
  const out: Array<[string, number]> = [];
  for await (const o of store.list(prefix)) out.push([o.key, o.sizeBytes]);
  return out;
}

const archive = pseudoRandomBytes(400_000, 11);
const v1: TarEntrySpec[] = [
  { name: 'game/', type: 'directory' },
  { name: 'game/bin/', type: 'directory' },
  { name: 'game/bin/game', content: pseudoRandomBytes(90_000, 3), mode: 0o755 },
  { name: 'game/assets.pak', content: archive },
  { name: 'game/readme.txt', content: 'version 1\n'.repeat(50) },
  { name: 'game/latest', type: 'symlink', linkname: 'readme.txt' },
];
// v2: bytes edited and inserted in the archive, the readme changed, a file added.
const archive2 = Buffer.concat([archive.subarray(0, 100_000), pseudoRandomBytes(5_000, 12), archive.subarray(100_000)]);
archive2[300_000] ^= 0xff;
const v2: TarEntrySpec[] = [
  { name: 'game/', type: 'directory' },
  { name: 'game/bin/', type: 'directory' },
  { name: 'game/bin/game', content: pseudoRandomBytes(90_000, 3), mode: 0o755 },
  { name: 'game/assets.pak', content: archive2 },
  { name: 'game/readme.txt', content: 'version 2\n'.repeat(50) },
  { name: 'game/latest', type: 'symlink', linkname: 'readme.txt' },
  { name: 'game/new.cfg', content: 'fullscreen=1\n' },
];

describe('makeRelease', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let store: FsBlobStore;
  let depotRoot: string;
  let base: Omit<MakeReleaseOptions, 'buildId' | 'buildName' | 'tarKey' | 'previous'>;

  beforeAll(async () => {
    tmp = await makeTempDir('mkraw');
    store = new FsBlobStore({ root: join(tmp.dir, 'blobs'), fsync: false });
    depotRoot = join(tmp.dir, 'blobs', 'cdn');
    await store.put('uploads/acme/demo/1.tar', await makeTar(v1));
    await store.put('uploads/acme/demo/2.tar', await makeTar(v2));
    base = { orgName: 'acme', appName: 'demo', blobStore: store, depotPrefix: 'cdn/', workDir: join(tmp.dir, 'work'), threads: 0 };
  });

  afterAll(async () => {
    await tmp.cleanup();
  });

  it('imports v1 as an image in the documented depot layout that extracts byte-identically', async () => {
    const r = await makeRelease({ ...base, buildId: 1, buildName: '1.0', tarKey: 'uploads/acme/demo/1.tar', previous: [] });
    expect(r.dxfName).toBe('b0001-t000');
    expect(r.image.path).toBe('dxf/acme/demo/0001/b0001-t000/');
    expect(r.files).toBe(3);
    expect(r.patches).toEqual([]);
    expect(r.warnings).toEqual([]);
    const keys = await listKeys(store, 'cdn/');
    expect(keys.every(([k]) => k.startsWith('cdn/dxf/acme/demo/0001/b0001-t000/'))).toBe(true);
    expect(keys.map(([k]) => k)).toContain('cdn/dxf/acme/demo/0001/b0001-t000/image.json');
    expect(keys.map(([k]) => k)).toContain(`cdn/dxf/acme/demo/0001/b0001-t000/${r.image.manifest}`);
    expect(r.sizeBytes).toBe(keys.reduce((s, [, n]) => s + n, 0));

    const out = join(tmp.dir, 'extract-v1');
    await extractImage({ source: join(depotRoot, 'dxf/acme/demo/0001/b0001-t000'), outDir: out });
    expect(await readTree(out)).toEqual(treeOf(v1));
  });

  it('imports v2 with a direct patch from v1 that turns v1 into v2', async () => {
    const r = await makeRelease({
      ...base,
      buildId: 2,
      buildName: '1.1',
      tarKey: 'uploads/acme/demo/2.tar',
      previous: [{ buildId: 1, dxfName: 'b0001-t000' }],
    });
    expect(r.dxfName).toBe('b0002-t000');
    expect(r.patches).toHaveLength(1);
    expect(r.patches[0]).toMatchObject({ fromBuildId: 1, toBuildId: 2, path: 'pat/acme/demo/0002/0001/' });
    const patchKeys = await listKeys(store, 'cdn/pat/acme/demo/0002/0001/');
    expect(patchKeys.map(([k]) => k)).toContain('cdn/pat/acme/demo/0002/0001/patch.json');
    expect(r.patches[0].sizeBytes).toBe(patchKeys.reduce((s, [, n]) => s + n, 0));
    // A patch, not a second copy of the build: the archive is mostly shared.
    expect(r.patches[0].sizeBytes).toBeLessThan(r.sizeBytes / 4);

    const newDir = join(tmp.dir, 'patched-v2');
    await applyPatch({ patch: join(depotRoot, 'pat/acme/demo/0002/0001'), fromDir: join(tmp.dir, 'extract-v1'), outDir: newDir });
    expect(await readTree(newDir)).toEqual(treeOf(v2));
  });

  it('gives the same result and the same depot objects when run twice, and leaves no scratch files', async () => {
    const opts = { ...base, buildId: 2, buildName: '1.1', tarKey: 'uploads/acme/demo/2.tar', previous: [{ buildId: 1, dxfName: 'b0001-t000' }] };
    const before = await listKeys(store, 'cdn/');
    // A stray object in the image folder and a patch from a build that is no longer kept: garbage to remove.
    await store.put('cdn/dxf/acme/demo/0002/b0002-t000/packs/stale.rkp', Buffer.from('x'));
    await store.put('cdn/pat/acme/demo/0002/0009/patch.json', Buffer.from('{}'));
    const again = await makeRelease(opts);
    const first = await makeRelease(opts);
    expect(again).toEqual(first);
    expect(await listKeys(store, 'cdn/')).toEqual(before);
    const work = await readdir(base.workDir);
    expect(work).toEqual(['image-cache']);
    expect(await readdir(join(base.workDir, 'image-cache/acme/demo'))).toEqual(['0001', '0002']);
  });

  it('does not patch from a cached previous image that no longer matches the depot', async () => {
    // As if the app had been deleted and created again: same build id and dxfName, other content.
    const cached = join(base.workDir, 'image-cache/acme/demo/0001/b0001-t000');
    await writeFile(join(cached, 'image.json'), '{"stale":true}');
    await rm(join(cached, 'packs'), { recursive: true, force: true });
    const r = await makeRelease({
      ...base,
      buildId: 2,
      buildName: '1.1',
      tarKey: 'uploads/acme/demo/2.tar',
      previous: [{ buildId: 1, dxfName: 'b0001-t000' }],
    });
    expect(r.warnings).toEqual([]);
    const out = join(tmp.dir, 'patched-v2-again');
    await applyPatch({ patch: join(depotRoot, 'pat/acme/demo/0002/0001'), fromDir: join(tmp.dir, 'extract-v1'), outDir: out });
    expect(await readTree(out)).toEqual(treeOf(v2));
  });

  it('skips a previous build whose image is not in the depot with a warning', async () => {
    const r = await makeRelease({
      ...base,
      appName: 'other',
      buildId: 3,
      buildName: '3',
      tarKey: 'uploads/acme/demo/2.tar',
      previous: [{ buildId: 2, dxfName: 'b0002-t000' }],
    });
    expect(r.patches).toEqual([]);
    expect(r.warnings).toEqual([{ code: 'patch-skipped', message: expect.stringContaining('0002') }]);
  });

  it('stops with canceled when the signal fires during the build, publishing nothing', async () => {
    const controller = new AbortController();
    const err = await makeRelease({
      ...base,
      appName: 'aborted',
      buildId: 1,
      buildName: '1',
      tarKey: 'uploads/acme/demo/2.tar',
      previous: [],
      signal: controller.signal,
      onProgress: () => controller.abort(new Error('worker stopping')),
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StepError);
    expect((err as StepError).code).toBe('canceled');
    expect(await listKeys(store, 'cdn/dxf/acme/aborted/')).toEqual([]);
    expect((await readdir(base.workDir)).filter((n) => n.startsWith('mkraw-'))).toEqual([]);
  });

  it('discards an abandoned build from the depot, leaving other builds alone', async () => {
    await makeRelease({ ...base, appName: 'gone', buildId: 1, buildName: '1', tarKey: 'uploads/acme/demo/1.tar', previous: [] });
    await makeRelease({ ...base, appName: 'gone', buildId: 2, buildName: '2', tarKey: 'uploads/acme/demo/2.tar', previous: [{ buildId: 1, dxfName: 'b0001-t000' }] });
    const deleted = await discardBuild(store, 'cdn/', 'acme', 'gone', 2);
    expect(deleted).toBeGreaterThan(0);
    expect(await listKeys(store, 'cdn/dxf/acme/gone/0002/')).toEqual([]);
    expect(await listKeys(store, 'cdn/pat/acme/gone/')).toEqual([]);
    expect((await listKeys(store, 'cdn/dxf/acme/gone/0001/')).length).toBeGreaterThan(0);
  });

  it('refuses a tar with an entry escaping its root with fileReadFailed and publishes nothing', async () => {
    await store.put(
      'uploads/acme/evil/1.tar',
      await makeTar([
        { name: 'game/ok.txt', content: 'fine' },
        { name: 'game/../../etc/passwd', content: 'root::0:0' },
      ]),
    );
    const err = await makeRelease({ ...base, appName: 'evil', buildId: 1, buildName: '1', tarKey: 'uploads/acme/evil/1.tar', previous: [] }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StepError);
    const te = (err as StepError).toTaskError();
    expect(te.code).toBe('file-read-failed');
    expect(te.fileReadFailed?.filename).toBe('game/../../etc/passwd');
    expect(te.fileReadFailed?.typeDetected).toBeTruthy();
    expect(te.fileReadFailed?.typeExpected).toBeTruthy();
    expect(await listKeys(store, 'cdn/dxf/acme/evil/')).toEqual([]);
    expect((await readdir(base.workDir)).filter((n) => n.startsWith('mkraw-'))).toEqual([]);
  });
});

/** What extracting `entries` must give: the tree below the tar's root, as `readTree` reports it. */
function treeOf(entries: TarEntrySpec[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    const name = e.name.replace(/\/$/, '');
    const type = e.type ?? 'file';
    if (type === 'directory') out[name] = 'dir';
    else if (type === 'symlink') out[name] = `link:${e.linkname}`;
    else {
      const body = typeof e.content === 'string' ? Buffer.from(e.content) : (e.content ?? Buffer.alloc(0));
      out[name] = `${((e.mode ?? 0o644) & 0o100) !== 0 ? 'x' : '-'}:${body.toString('base64')}`;
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}
