import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildImage } from '../image/build.js';
import { applyPatch } from './apply.js';
import { applyPatchInPlace } from './in-place.js';
import { DATA_PART_NAME, MANIFEST_PART_NAME, PATCH_POINTER_NAME } from './constants.js';
import { PatchCorruptError, PatchError, WrongBaseError } from './errors.js';
import type { PatchPointer } from './format.js';
import { makePatch } from './make.js';
import { EDIT_KINDS, editTree, makeTree, Rng, snapshot, type EditKind } from './test-support/trees.js';

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'rockit-patch-test-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

async function buildPair(seed: number, kinds: EditKind[]): Promise<{ a: string; b: string }> {
  const rng = new Rng(seed);
  const a = join(work, 'A');
  const b = join(work, 'B');
  await makeTree(a, rng);
  // B starts as the same tree (same seed; fs.cp would not keep hard links), then is edited.
  await makeTree(b, new Rng(seed));
  await editTree(b, rng, kinds);
  return { a, b };
}

describe('makePatch / applyPatch round trips', () => {
  const scripts: EditKind[][] = [
    ['edit', 'insert', 'append'],
    ['truncate', 'rename', 'move', 'delete'],
    ['add', 'chmod', 'symlink', 'edit'],
    EDIT_KINDS,
    ['insert', 'insert', 'move', 'add', 'delete', 'chmod'],
  ];
  scripts.forEach((kinds, i) => {
    it(`script ${i}: ${kinds.join(',')}`, async () => {
      const { a, b } = await buildPair(100 + i, kinds);
      const patchDir = join(work, 'patch');
      const { stats } = await makePatch({ from: a, to: b, outDir: patchDir, level: 3 });
      const out = join(work, 'out');
      await applyPatch({ patch: patchDir, fromDir: a, outDir: out });
      expect(await snapshot(out)).toEqual(await snapshot(b));
      const bBytes = (await snapshot(b)).length;
      expect(bBytes).toBeGreaterThan(0);
      expect(stats.sharedChunks).toBeGreaterThan(0);
    });
  });

  it('ships far less than the new build for small edits', async () => {
    const { a, b } = await buildPair(7, ['edit', 'insert']);
    const { stats } = await makePatch({ from: a, to: b, outDir: join(work, 'p') });
    // The tree holds ~1 MiB of incompressible assets; the edits touch at most two chunks plus an insertion.
    expect(stats.patchBytes).toBeLessThan(80_000);
    expect(stats.deltaRuns + stats.runs).toBeGreaterThan(0);
  });

  it('ships repeated new data once (copies within a file and across files)', async () => {
    const { a, b } = await buildPair(8, ['edit']);
    const fresh = new Rng(99).bytes(300_000);
    await writeFile(join(b, 'twice.bin'), Buffer.concat([fresh, fresh, fresh]));
    await writeFile(join(b, 'config/again.bin'), fresh);
    const { stats } = await makePatch({ from: a, to: b, outDir: join(work, 'p'), level: 3 });
    expect(stats.internalCopies).toBeGreaterThan(0);
    expect(stats.newRawBytes).toBeLessThan(700_000); // 1.2 MB of new bytes in B, 300 KB distinct (+ chunks straddling the copies)
    await applyPatch({ patch: join(work, 'p'), fromDir: a, outDir: join(work, 'out') });
    expect(await snapshot(join(work, 'out'))).toEqual(await snapshot(b));
  });

  it('makes a tiny patch for identical builds', async () => {
    const rng = new Rng(5);
    await makeTree(join(work, 'A'), rng);
    await makeTree(join(work, 'B'), new Rng(5));
    const { stats } = await makePatch({ from: join(work, 'A'), to: join(work, 'B'), outDir: join(work, 'p') });
    expect(stats.newChunks).toBe(0);
    expect(stats.runs).toBe(0);
    expect(stats.patchBytes).toBeLessThan(400);
    await applyPatch({ patch: join(work, 'p'), fromDir: join(work, 'A'), outDir: join(work, 'out') });
    expect(await snapshot(join(work, 'out'))).toEqual(await snapshot(join(work, 'B')));
  });
});

describe('image and tar inputs', () => {
  it('patches from an image (no tar) to a tar, and from a tar to an image', async () => {
    const { a, b } = await buildPair(31, ['edit', 'insert', 'move', 'add', 'chmod']);
    const aImage = join(work, 'A.img');
    await buildImage({ input: a, outDir: aImage, threads: 0 });
    const bTar = join(work, 'B.tar');
    execFileSync('tar', ['-cf', bTar, '-C', b, '.']);
    const p1 = join(work, 'p1');
    const { stats } = await makePatch({ from: aImage, to: bTar, outDir: p1, level: 3 });
    expect(stats.sharedChunks).toBeGreaterThan(stats.newChunks);
    await applyPatch({ patch: p1, fromDir: a, outDir: join(work, 'o1') });
    expect(await snapshot(join(work, 'o1'))).toEqual(await snapshot(b));

    const aTar = join(work, 'A.tar');
    execFileSync('tar', ['-cf', aTar, '-C', a, '.']);
    const bImage = join(work, 'B.img');
    await buildImage({ input: bTar, outDir: bImage, threads: 0 });
    const p2 = join(work, 'p2');
    await makePatch({ from: aTar, to: bImage, outDir: p2, level: 3 });
    await applyPatch({ patch: p2, fromDir: a, outDir: join(work, 'o2') });
    expect(await snapshot(join(work, 'o2'))).toEqual(await snapshot(b));
  });
});

describe('damage and wrong inputs', () => {
  async function prepared() {
    const { a, b } = await buildPair(42, ['edit', 'insert', 'add', 'rename']);
    const p = join(work, 'patch');
    await makePatch({ from: a, to: b, outDir: p, level: 3 });
    return { a, b, p };
  }

  it('names the data part when a byte is flipped', async () => {
    const { a, p } = await prepared();
    const path = join(p, DATA_PART_NAME);
    const buf = await readFile(path);
    buf[Math.floor(buf.length / 2)] ^= 0x40;
    await writeFile(path, buf);
    const err = await applyPatch({ patch: p, fromDir: a, outDir: join(work, 'out') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PatchCorruptError);
    expect((err as PatchCorruptError).part).toBe(DATA_PART_NAME);
  });

  it('names the manifest part when it is truncated', async () => {
    const { a, p } = await prepared();
    await truncate(join(p, MANIFEST_PART_NAME), 20);
    const err = await applyPatch({ patch: p, fromDir: a, outDir: join(work, 'out') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PatchCorruptError);
    expect((err as PatchCorruptError).part).toBe(MANIFEST_PART_NAME);
    expect((err as PatchCorruptError).code).toBe('patchCorrupt');
  });

  it('names the installed file that is not the expected base', async () => {
    const { a, p } = await prepared();
    const victim = join(a, 'data/assets1.pak');
    const buf = await readFile(victim);
    buf[1000] ^= 1;
    await writeFile(victim, buf);
    const err = await applyPatch({ patch: p, fromDir: a, outDir: join(work, 'out') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WrongBaseError);
    expect((err as WrongBaseError).path).toBe('data/assets1.pak');
  });

  it('names an unchanged file of A (copied whole) whose bytes differ from its manifest, in both apply modes', async () => {
    const { a, b } = await buildPair(43, ['edit']);
    const p = join(work, 'p');
    await makePatch({ from: a, to: b, outDir: p, level: 1 });
    // A data file the edit did not touch: B takes it from A whole. Flip one byte of A's copy.
    const inB = new Set(await snapshot(b));
    const victim = (await snapshot(a)).find((l) => l.startsWith('f data/') && inB.has(l))!.split(' ')[1];
    const buf = await readFile(join(a, victim));
    buf[buf.length >> 1] ^= 0x80;
    await writeFile(join(a, victim), buf);
    const err = await applyPatch({ patch: p, fromDir: a, outDir: join(work, 'out') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WrongBaseError);
    expect((err as WrongBaseError).path).toBe(victim);
    const before = await snapshot(a);
    const err2 = await applyPatchInPlace({ patch: p, dir: a }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(WrongBaseError);
    expect((err2 as WrongBaseError).path).toBe(victim);
    expect(await snapshot(a)).toEqual(before);
  });

  it('refuses a non-empty output folder', async () => {
    const { a, p } = await prepared();
    await writeFile(join(work, 'junk'), 'x');
    await expect(applyPatch({ patch: p, fromDir: a, outDir: work })).rejects.toMatchObject({ code: 'patchInput' });
  });

  it('survives mutated parts (pointer re-signed): typed error or exact B, nothing outside the target', async () => {
    const { a, b, p } = await prepared();
    const expected = await snapshot(b);
    const pointer = JSON.parse(await readFile(join(p, PATCH_POINTER_NAME), 'utf8')) as PatchPointer;
    const originals = new Map<string, Buffer>();
    for (const part of pointer.parts) originals.set(part.name, await readFile(join(p, part.name)));
    const rng = new Rng(9);
    const before = (await readdir(work)).sort();
    for (let iter = 0; iter < 40; iter++) {
      const part = pointer.parts[iter % pointer.parts.length];
      const buf = Buffer.from(originals.get(part.name)!);
      const mode = rng.int(3);
      let mutated: Buffer;
      if (mode === 0) {
        for (let k = 0; k < 1 + rng.int(4); k++) buf[rng.int(buf.length)] = rng.int(256);
        mutated = buf;
      } else if (mode === 1) {
        mutated = buf.subarray(0, rng.int(buf.length));
      } else {
        mutated = Buffer.from(rng.bytes(buf.length));
        buf.copy(mutated, 0, 0, Math.min(buf.length, 8 + rng.int(80)));
      }
      await writeFile(join(p, part.name), mutated);
      const copy: PatchPointer = JSON.parse(JSON.stringify(pointer));
      const entry = copy.parts.find((x) => x.name === part.name)!;
      entry.sizeBytes = mutated.length;
      entry.sha256 = createHash('sha256').update(mutated).digest('hex');
      await writeFile(join(p, PATCH_POINTER_NAME), JSON.stringify(copy));
      const out = join(work, 'out');
      try {
        await applyPatch({ patch: p, fromDir: a, outDir: out });
        expect(await snapshot(out)).toEqual(expected);
      } catch (err) {
        if (!(err instanceof PatchError)) throw err;
      }
      await rm(out, { recursive: true, force: true });
      await writeFile(join(p, part.name), originals.get(part.name)!);
      expect((await readdir(work)).sort()).toEqual(before);
    }
    await writeFile(join(p, PATCH_POINTER_NAME), JSON.stringify(pointer));
  });
});
