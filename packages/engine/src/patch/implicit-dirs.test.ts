// Builds whose tar carries no folder entries (only `bin/run`, no `bin/`): their manifests name files
// whose parents are not entries of the build. Apply must create those parents, exactly as extract does.
import { execFileSync } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyPatch } from './apply.js';
import { UnsafePathError } from './errors.js';
import { applyPatchInPlace } from './in-place.js';
import { makePatch, makePatchFromSides } from './make.js';
import { memorySide, Rng, snapshot } from './test-support/trees.js';

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'rockit-patch-implicit-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Writes `files` under `root` and a tar of them that lists the files only (no folder entries). */
async function treeAndTar(root: string, files: Record<string, Buffer>, tar: string): Promise<void> {
  for (const [p, data] of Object.entries(files)) {
    await mkdir(join(root, p, '..'), { recursive: true });
    await writeFile(join(root, p), data);
  }
  await chmod(join(root, 'bin/run'), 0o755);
  execFileSync('tar', ['-cf', tar, '--no-recursion', '-C', root, ...Object.keys(files)]);
  const listed = execFileSync('tar', ['-tf', tar], { encoding: 'utf8' }).trim().split('\n');
  expect(listed.some((n) => n.endsWith('/'))).toBe(false);
}

function builds() {
  const rng = new Rng(11);
  const run = rng.bytes(90_000);
  const pak = rng.bytes(300_000);
  const a = { 'bin/run': run, 'data/deep/level/a.pak': pak, 'top.txt': Buffer.from('v1\n') };
  const pak2 = Buffer.from(pak);
  rng.bytes(500).copy(pak2, 150_000);
  const b = { 'bin/run': run, 'data/deep/level/a.pak': pak2, 'data/new/x.cfg': Buffer.from('k=v\n'), 'top.txt': Buffer.from('v2\n') };
  return { a, b };
}

describe('builds without folder entries', () => {
  it('applies into a new folder, creating implicit parents', async () => {
    const { a, b } = builds();
    await treeAndTar(join(work, 'A'), a, join(work, 'A.tar'));
    await treeAndTar(join(work, 'B'), b, join(work, 'B.tar'));
    await makePatch({ from: join(work, 'A.tar'), to: join(work, 'B.tar'), outDir: join(work, 'p'), level: 1 });
    const out = join(work, 'out');
    await applyPatch({ patch: join(work, 'p'), fromDir: join(work, 'A'), outDir: out });
    expect(await snapshot(out)).toEqual(await snapshot(join(work, 'B')));
    expect((await lstat(join(out, 'data/new'))).isDirectory()).toBe(true);
  });

  it('applies in place, creating implicit parents', async () => {
    const { a, b } = builds();
    await treeAndTar(join(work, 'A'), a, join(work, 'A.tar'));
    await treeAndTar(join(work, 'B'), b, join(work, 'B.tar'));
    await makePatch({ from: join(work, 'A.tar'), to: join(work, 'B.tar'), outDir: join(work, 'p'), level: 1 });
    await applyPatchInPlace({ patch: join(work, 'p'), dir: join(work, 'A') });
    expect(await snapshot(join(work, 'A'))).toEqual(await snapshot(join(work, 'B')));
    expect((await readdir(work)).filter((n) => n.startsWith('A.rockit'))).toEqual([]);
  });

  const unsafe: Array<[string, Parameters<typeof memorySide>[0]]> = [
    ['a file beneath a file', [{ path: 'f', type: 'file', data: Buffer.from('x') }, { path: 'f/g/evil', type: 'file', data: Buffer.from('y') }]],
    ['a file beneath an implicit folder beneath a symlink', [{ path: 'l', type: 'symlink', linkTarget: '.' }, { path: 'l/sub/evil', type: 'file', data: Buffer.from('y') }]],
    ['a file beneath a hard link', [{ path: 'f', type: 'file', data: Buffer.from('x') }, { path: 'h', type: 'hardlink', linkTarget: 'f' }, { path: 'h/evil', type: 'file', data: Buffer.from('y') }]],
    ['a symlink that escapes through another symlink', [{ path: 'd/up', type: 'symlink', linkTarget: '..' }, { path: 'd/out', type: 'symlink', linkTarget: 'up/..' }]],
  ];
  for (const [name, entries] of unsafe) {
    it(`still refuses ${name}`, async () => {
      const base = memorySide([{ path: 'a.bin', type: 'file', data: new Rng(1).bytes(20_000) }]);
      await makePatchFromSides(base, memorySide(entries), { outDir: join(work, 'p'), level: 1 });
      await mkdir(join(work, 'A'));
      await writeFile(join(work, 'A/a.bin'), new Rng(1).bytes(20_000));
      const out = join(work, 'out');
      const err = await applyPatch({ patch: join(work, 'p'), fromDir: join(work, 'A'), outDir: out }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsafePathError);
      expect(await readdir(out).catch(() => [])).toEqual([]);
    });
  }
});
