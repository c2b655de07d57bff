import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyPatch } from './apply.js';
import { DATA_PART_NAME, DATA_PART_VERSION, DATA_PART_VERSION_STREAMS, PATCH_POINTER_NAME } from './constants.js';
import { PatchCorruptError } from './errors.js';
import type { PatchPointer } from './format.js';
import { makePatch } from './make.js';
import { Rng, snapshot } from './test-support/trees.js';

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'rockit-patch-stream-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

/**
 * A "rebuilt executable": A is ~1.5 MB of random functions; B has the same functions in another
 * order, each with one patched 4-byte field every 512 bytes, so no content-defined chunk of B is in A
 * and the matching bytes lie anywhere in A.
 */
function rebuiltPair(seed: number): { a: Buffer; b: Buffer } {
  const rng = new Rng(seed);
  const funcs: Buffer[] = [];
  for (let i = 0; i < 600; i++) funcs.push(rng.bytes(1024 + rng.int(3072)));
  const a = Buffer.concat(funcs);
  const order = funcs.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const b = Buffer.concat(
    order.map((i) => {
      const f = Buffer.from(funcs[i]);
      for (let p = 100; p + 4 <= f.length; p += 512) f.writeUInt32LE(rng.int(0x100000000), p);
      return f;
    }),
  );
  return { a, b };
}

async function writePair(a: Buffer, b: Buffer): Promise<{ A: string; B: string }> {
  const A = join(work, 'A');
  const B = join(work, 'B');
  for (const [root, bin] of [[A, a], [B, b]] as const) {
    await mkdir(join(root, 'bin'), { recursive: true });
    await writeFile(join(root, 'bin/tool'), bin);
    await writeFile(join(root, 'readme.txt'), 'same in both\n');
  }
  return { A, B };
}

async function dataVersion(patchDir: string): Promise<number> {
  const fh = await open(join(patchDir, DATA_PART_NAME), 'r');
  try {
    const buf = Buffer.alloc(6);
    await fh.read(buf, 0, 6, 0);
    return buf.readUInt16LE(4);
  } finally {
    await fh.close();
  }
}

describe('file streams (whole same-path A file as reference)', () => {
  it('patches a rebuilt file far smaller than runs with small references, and applies exactly', async () => {
    const { a, b } = rebuiltPair(11);
    const { A, B } = await writePair(a, b);
    // Reference budget per run far below the file: runs only see A bytes near the mapped offset. Level 9: at
    // levels below ~5 zstd indexes only the last MiB of a large dictionary (and long-distance matching misses short matches).
    const common = { level: 9, runCapBytes: 64 << 10, refCapBytes: 64 << 10 };
    const runsOnly = await makePatch({ from: A, to: B, outDir: join(work, 'p-runs'), ...common, streamMinNewBytes: Number.MAX_SAFE_INTEGER });
    const streamed = await makePatch({ from: A, to: B, outDir: join(work, 'p-stream'), ...common, streamMinNewBytes: 1 << 10 });
    expect(runsOnly.stats.streams).toBe(0);
    expect(streamed.stats.streams).toBe(1);
    expect(streamed.stats.sharedChunks).toBe(1); // readme.txt only
    expect(await dataVersion(join(work, 'p-runs'))).toBe(DATA_PART_VERSION);
    expect(await dataVersion(join(work, 'p-stream'))).toBe(DATA_PART_VERSION_STREAMS);
    // Everything in B except the patched fields (4 bytes per 512) is somewhere in A.
    expect(streamed.stats.patchBytes).toBeLessThan(runsOnly.stats.patchBytes / 2);
    expect(streamed.stats.patchBytes).toBeLessThan(b.length / 20);

    for (const p of ['p-runs', 'p-stream']) {
      const out = join(work, `out-${p}`);
      await applyPatch({ patch: join(work, p), fromDir: A, outDir: out });
      expect(await snapshot(out)).toEqual(await snapshot(B));
    }
  });

  it('names the data part when a stream payload is damaged (pointer re-signed)', async () => {
    const { a, b } = rebuiltPair(12);
    const { A, B } = await writePair(a, b);
    const p = join(work, 'p');
    await makePatch({ from: A, to: B, outDir: p, level: 3, streamMinNewBytes: 1 << 10 });
    const dataPath = join(p, DATA_PART_NAME);
    const data = await readFile(dataPath);
    // Flip a byte in the middle of the part: inside the stream frame (the only large record).
    data[Math.floor(data.length / 2)] ^= 0x40;
    await writeFile(dataPath, data);
    const pointer = JSON.parse(await readFile(join(p, PATCH_POINTER_NAME), 'utf8')) as PatchPointer;
    const { createHash } = await import('node:crypto');
    pointer.parts.find((x) => x.role === 'data')!.sha256 = createHash('sha256').update(data).digest('hex');
    await writeFile(join(p, PATCH_POINTER_NAME), JSON.stringify(pointer));
    const err = await applyPatch({ patch: p, fromDir: A, outDir: join(work, 'out') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PatchCorruptError);
    expect((err as PatchCorruptError).part).toBe(DATA_PART_NAME);
  });

  it('falls back to runs when the same-path A file is over the stream cap', async () => {
    const { a, b } = rebuiltPair(13);
    const { A, B } = await writePair(a, b);
    const r = await makePatch({ from: A, to: B, outDir: join(work, 'p'), level: 3, streamMinNewBytes: 1 << 10, streamCapBytes: a.length - 1 });
    expect(r.stats.streams).toBe(0);
    await applyPatch({ patch: join(work, 'p'), fromDir: A, outDir: join(work, 'out') });
    expect(await snapshot(join(work, 'out'))).toEqual(await snapshot(B));
  });
});
