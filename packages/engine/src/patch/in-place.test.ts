import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile, readFile } from 'node:fs/promises';
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
