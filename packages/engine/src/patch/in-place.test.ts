import { spawnSync } from 'node:child_process';
import { chmod, link, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WrongBaseError } from './errors.js';
import { applyPatchInPlace, recoverInPlace, type InPlaceStep } from './in-place.js';
import { makePatch } from './make.js';
import { editTree, makeTree, Rng, snapshot } from './test-support/trees.js';

const here = dirname(fileURLToPath(import.meta.url));
// The child runs plain Node: bundle it from source (with vite, which vitest always brings) beside the
// repository's node_modules, so that its packages (the native zstd binding) resolve as externals.
const bundleDir = resolve(here, '../../../../node_modules/.cache', `rockit-patch-crash-${process.pid}`);
const childJs = join(bundleDir, 'crash-child.mjs');
let work: string;
let snapA: string[];
let snapB: string[];
const SEED = 77;

beforeAll(async () => {
  await build({
    configFile: false,
    logLevel: 'silent',
    root: here,
    build: {
      ssr: join(here, 'test-support/crash-child.ts'),
      outDir: bundleDir,
      emptyOutDir: true,
      minify: false,
      target: 'node20',
      rollupOptions: { output: { format: 'es', entryFileNames: 'crash-child.mjs' } },
    },
  });
  work = await mkdtemp(join(tmpdir(), 'rockit-inplace-test-'));
  await makeTree(join(work, 'A'), new Rng(SEED));
  await makeTree(join(work, 'B'), new Rng(SEED));
  await editTree(join(work, 'B'), new Rng(SEED + 1), ['edit', 'insert', 'rename', 'move', 'delete', 'add', 'chmod', 'symlink']);
  await makePatch({ from: join(work, 'A'), to: join(work, 'B'), outDir: join(work, 'patch'), level: 3 });
  snapA = await snapshot(join(work, 'A'));
  snapB = await snapshot(join(work, 'B'));
  expect(snapA).not.toEqual(snapB);
});

afterAll(async () => {
  await rm(bundleDir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

async function freshInstall(name: string): Promise<string> {
  const dir = join(work, name);
  await makeTree(dir, new Rng(SEED));
  return dir;
}

describe('applyPatchInPlace', () => {
  it('updates A to B and leaves nothing beside the folder', async () => {
    const dir = await freshInstall('plain');
    await applyPatchInPlace({ patch: join(work, 'patch'), dir });
    expect(await snapshot(dir)).toEqual(snapB);
    expect((await readdir(work)).filter((n) => n.startsWith('plain.'))).toEqual([]);
  });

  const steps: Array<[InPlaceStep, 'A' | 'B']> = [
    ['building', 'A'],
    ['built', 'A'],
    ['carried', 'A'],
    ['journaled', 'B'],
    ['movedOld', 'B'],
    ['movedNew', 'B'],
    ['removedOld', 'B'],
  ];
  for (const [step, after] of steps) {
    it(`killed at ${step}: recovery yields exactly ${after}, a rerun yields B`, async () => {
      const dir = await freshInstall(`kill-${step}`);
      const res = spawnSync(process.execPath, [childJs, join(work, 'patch'), dir, step], { encoding: 'utf8' });
      expect(res.signal).toBe('SIGKILL');
      expect(res.stdout).not.toContain('done');
      await recoverInPlace(dir);
      expect(await snapshot(dir)).toEqual(after === 'A' ? snapA : snapB);
      expect((await readdir(work)).filter((n) => n.startsWith(`kill-${step}.`))).toEqual([]);
      if (after === 'A') {
        await applyPatchInPlace({ patch: join(work, 'patch'), dir });
        expect(await snapshot(dir)).toEqual(snapB);
      }
    });
  }

  it('a rerun of the same patch after a kill completes the swap and reports it', async () => {
    const dir = await freshInstall('rerun');
    spawnSync(process.execPath, [childJs, join(work, 'patch'), dir, 'movedOld']);
    const res = await applyPatchInPlace({ patch: join(work, 'patch'), dir });
    expect(res.outcome).toBe('alreadyApplied');
    expect(res.recovery).toBe('rolledForward');
    expect(await snapshot(dir)).toEqual(snapB);
  });

  it('a rerun after a kill before the journal rebuilds B from A', async () => {
    const dir = await freshInstall('rerun2');
    spawnSync(process.execPath, [childJs, join(work, 'patch'), dir, 'built']);
    const res = await applyPatchInPlace({ patch: join(work, 'patch'), dir });
    expect(res).toMatchObject({ outcome: 'applied', recovery: 'discardedStaging' });
    expect(await snapshot(dir)).toEqual(snapB);
  });

  it('keeps distinct files distinct when B holds two copies of an unchanged file', async () => {
    const a = join(work, 'dupA');
    const b = join(work, 'dupB');
    const data = new Rng(5).bytes(40_000);
    await makeTree(a, new Rng(1));
    await makeTree(b, new Rng(1));
    await writeFile(join(a, 'x.bin'), data);
    await writeFile(join(b, 'x.bin'), data);
    await writeFile(join(b, 'x-copy.bin'), data);
    await makePatch({ from: a, to: b, outDir: join(work, 'dupP'), level: 1 });
    await applyPatchInPlace({ patch: join(work, 'dupP'), dir: a });
    expect(await snapshot(a)).toEqual(await snapshot(b));
  });

  it('leaves A untouched when the installed folder is not the base', async () => {
    const dir = await freshInstall('wrong');
    const victim = join(dir, 'data/assets0.pak');
    const buf = await readFile(victim);
    buf[10] ^= 0xff;
    await writeFile(victim, buf);
    const before = await snapshot(dir);
    await expect(applyPatchInPlace({ patch: join(work, 'patch'), dir })).rejects.toBeInstanceOf(WrongBaseError);
    expect(await snapshot(dir)).toEqual(before);
    expect((await readdir(work)).filter((n) => n.startsWith('wrong.'))).toEqual([]);
  });
});

/** A player's entry in an installed folder (path relative to it). */
type UserEntry =
  | { path: string; kind: 'file'; data: string; mode: number }
  | { path: string; kind: 'dir'; mode: number }
  | { path: string; kind: 'symlink'; target: string }
  | { path: string; kind: 'hardlink'; target: string };

// The player's entries, parents before children. B (below) adds `notes.txt` and a file `extras`, and
// removes the folder data/levels.
const USER: UserEntry[] = [
  { path: 'game.log', kind: 'file', data: 'started\n', mode: 0o644 },
  { path: 'notes.txt', kind: 'file', data: 'my notes', mode: 0o600 },
  { path: 'notes.txt.rockit-user', kind: 'file', data: 'my own file of that name', mode: 0o644 },
  { path: 'config/user.ini', kind: 'file', data: 'fov=110\n', mode: 0o600 },
  { path: 'saves', kind: 'dir', mode: 0o700 },
  { path: 'saves/slot1.sav', kind: 'file', data: 'slot one', mode: 0o600 },
  { path: 'saves/slot1-backup.sav', kind: 'hardlink', target: 'saves/slot1.sav' },
  { path: 'saves/deep', kind: 'dir', mode: 0o750 },
  { path: 'saves/deep/slot2.sav', kind: 'file', data: 'slot two', mode: 0o640 },
  { path: 'saves/deep/run.sh', kind: 'file', data: '#!/bin/sh\n', mode: 0o755 },
  { path: 'screenshots', kind: 'dir', mode: 0o755 },
  { path: 'latest', kind: 'symlink', target: 'saves/slot1.sav' },
  { path: 'saves-link', kind: 'symlink', target: 'saves' },
  { path: 'dangling', kind: 'symlink', target: 'nowhere/at/all' },
  { path: 'extras', kind: 'dir', mode: 0o755 },
  { path: 'extras/readme.txt', kind: 'file', data: 'mod readme', mode: 0o644 },
  { path: 'data/levels/custom.lvl', kind: 'file', data: 'my level', mode: 0o644 },
];

/** Where each conflicting entry of USER is kept after the update (B wins its path). */
const MOVED: Record<string, string> = { 'notes.txt': 'notes.txt.rockit-user-2', extras: 'extras.rockit-user' };

/** USER's path after the update: renamed itself, or beneath a renamed folder. */
function keptPath(path: string): string {
  for (const [from, to] of Object.entries(MOVED)) {
    if (path === from) return to;
    if (path.startsWith(`${from}/`)) return to + path.slice(from.length);
  }
  return path;
}

async function addUserEntries(root: string, rename: (p: string) => string = (p) => p): Promise<void> {
  for (const e of USER) {
    const abs = join(root, rename(e.path));
    await mkdir(dirname(abs), { recursive: true });
    if (e.kind === 'dir') {
      await mkdir(abs);
      await chmod(abs, e.mode);
    } else if (e.kind === 'file') {
      await writeFile(abs, e.data);
      await chmod(abs, e.mode);
    } else if (e.kind === 'symlink') {
      await symlink(e.target, abs);
    } else {
      await link(join(root, rename(e.target)), abs);
    }
  }
}

/** Exact permission bits of every non-symlink entry of USER, at their paths after the update. */
async function userModes(root: string, rename: (p: string) => string = (p) => p): Promise<string[]> {
  const out: string[] = [];
  for (const e of USER) {
    if (e.kind === 'symlink') continue;
    const st = await lstat(join(root, rename(e.path)));
    out.push(`${e.path} ${(st.mode & 0o7777).toString(8)}`);
  }
  return out;
}

describe('applyPatchInPlace keeps the player\'s entries', () => {
  let patch: string;
  let expected: string[];
  let expectedModes: string[];

  beforeAll(async () => {
    const a = join(work, 'userA');
    const b = join(work, 'userB');
    await makeTree(a, new Rng(SEED));
    await makeTree(b, new Rng(SEED));
    await rm(join(b, 'data/levels'), { recursive: true });
    await writeFile(join(b, 'notes.txt'), 'release notes of B');
    await writeFile(join(b, 'extras'), 'a file of B');
    await writeFile(join(b, 'config/c3.ini'), 'changed by B');
    patch = join(work, 'userP');
    await makePatch({ from: a, to: b, outDir: patch, level: 1 });
    // B plus the player's entries, conflicting ones under their kept names; the original modes of data/levels.
    await addUserEntries(b, keptPath);
    await chmod(join(b, 'data/levels'), (await lstat(join(a, 'data/levels'))).mode & 0o7777);
    expected = await snapshot(b);
    expectedModes = await userModes(b, keptPath);
  });

  async function installWithUserEntries(name: string): Promise<string> {
    const dir = await freshInstall(name);
    await addUserEntries(dir);
    return dir;
  }

  it('results in B plus every player entry, byte-equal with modes kept, files linked not copied', async () => {
    const dir = await installWithUserEntries('user');
    const inodes = new Map<string, number>();
    for (const e of USER) if (e.kind === 'file') inodes.set(e.path, (await lstat(join(dir, e.path))).ino);
    const res = await applyPatchInPlace({ patch, dir });
    expect(res.outcome).toBe('applied');
    expect(await snapshot(dir)).toEqual(expected);
    expect(await userModes(dir, keptPath)).toEqual(expectedModes);
    for (const [path, ino] of inodes) expect((await lstat(join(dir, keptPath(path)))).ino, path).toBe(ino);
    expect(res.kept.count).toBe(USER.filter((e) => e.kind !== 'dir').length);
    expect(res.kept.conflicts).toEqual([
      { path: 'extras', keptAs: 'extras.rockit-user' },
      { path: 'notes.txt', keptAs: 'notes.txt.rockit-user-2' },
    ]);
    expect((await readdir(work)).filter((n) => n.startsWith('user.'))).toEqual([]);
  });

  it('keeps only what the player made: a plain install reports nothing kept', async () => {
    const dir = await freshInstall('user-none');
    const res = await applyPatchInPlace({ patch, dir });
    expect(res.kept).toEqual({ count: 0, conflicts: [] });
    expect((await snapshot(dir)).filter((l) => l.includes('rockit-user') || l.includes('data/levels'))).toEqual([]);
  });

  it('killed right after carrying: recovery leaves the original folder with every player entry', async () => {
    const dir = await installWithUserEntries('user-kill');
    const before = await snapshot(dir);
    const res = spawnSync(process.execPath, [childJs, patch, dir, 'carried'], { encoding: 'utf8' });
    expect(res.signal).toBe('SIGKILL');
    expect(await readdir(work)).toContain('user-kill.rockit-new');
    expect(await recoverInPlace(dir)).toBe('discardedStaging');
    expect(await snapshot(dir)).toEqual(before);
    expect((await readdir(work)).filter((n) => n.startsWith('user-kill.'))).toEqual([]);
    await applyPatchInPlace({ patch, dir });
    expect(await snapshot(dir)).toEqual(expected);
  });

  it('killed after the journal: recovery rolls forward to B with every player entry', async () => {
    const dir = await installWithUserEntries('user-kill2');
    const res = spawnSync(process.execPath, [childJs, patch, dir, 'movedOld'], { encoding: 'utf8' });
    expect(res.signal).toBe('SIGKILL');
    expect(await recoverInPlace(dir)).toBe('rolledForward');
    expect(await snapshot(dir)).toEqual(expected);
    expect(await userModes(dir, keptPath)).toEqual(expectedModes);
  });
});

