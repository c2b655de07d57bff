// applyPatch's assembly jobs (apply-job.ts) on the codec workers and on the calling thread, whole files and files
// written in pieces: exact B, and the same typed errors wherever the damage is found.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveCodecWorkerFile } from '../codec/codec-pool.js';
import { applyPatch, type ApplyInternals } from './apply.js';
import { DATA_PART_NAME, PATCH_POINTER_NAME, RecordTag, RunCodec } from './constants.js';
import { PatchCorruptError, WrongBaseError } from './errors.js';
import { DATA_HEADER_BYTES, decodeRecordHeader, type PatchPointer } from './format.js';
import { makePatch } from './make.js';
import { Rng, snapshot } from './test-support/trees.js';

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'rockit-apply-jobs-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const BIG = 2 << 20;
const EDIT_AT = 1 << 20;

/** A: one 2 MiB file and a small one. B: the big file edited in the middle, new bytes three times in one file and once in another. */
async function pair(again = true): Promise<{ A: string; B: string }> {
  const rng = new Rng(77);
  const big = rng.bytes(BIG);
  const small = rng.bytes(20_000);
  const A = join(work, 'A');
  const B = join(work, 'B');
  await mkdir(join(A, 'data'), { recursive: true });
  await mkdir(join(B, 'data'), { recursive: true });
  await writeFile(join(A, 'data/big.bin'), big);
  await writeFile(join(A, 'small.txt'), small);
  const edited = Buffer.from(big);
  rng.bytes(3000).copy(edited, EDIT_AT);
  await writeFile(join(B, 'data/big.bin'), edited);
  await writeFile(join(B, 'small.txt'), small);
  const fresh = rng.bytes(300_000);
  await writeFile(join(B, 'data/thrice.bin'), Buffer.concat([fresh, fresh, fresh]));
  if (again) await writeFile(join(B, 'again.bin'), fresh);
  return { A, B };
}

/** Offset and payload position of the first run of the data part that is (or is not) a delta run. */
function firstRun(data: Buffer, delta = true): { offset: number; payloadAt: number; payloadSize: number } {
  let pos = DATA_HEADER_BYTES;
  for (;;) {
    const rec = decodeRecordHeader(DATA_PART_NAME, data.subarray(pos), pos);
    if (rec.tag === RecordTag.End) throw new Error('no such run');
    const head = rec.tag === RecordTag.Run ? rec.run : rec.stream;
    if (rec.tag === RecordTag.Run && (rec.run.codec === RunCodec.ZstdDelta) === delta) return { offset: pos, payloadAt: pos + rec.headerBytes, payloadSize: head.payloadSize };
    pos += rec.headerBytes + head.payloadSize;
  }
}

async function resign(p: string, data: Buffer): Promise<void> {
  await writeFile(join(p, DATA_PART_NAME), data);
  const pointer = JSON.parse(await readFile(join(p, PATCH_POINTER_NAME), 'utf8')) as PatchPointer;
  pointer.parts.find((x) => x.role === 'data')!.sha256 = createHash('sha256').update(data).digest('hex');
  await writeFile(join(p, PATCH_POINTER_NAME), JSON.stringify(pointer));
}

async function flipA(A: string, at: number): Promise<void> {
  const path = join(A, 'data/big.bin');
  const buf = await readFile(path);
  buf[at] ^= 0x10;
  await writeFile(path, buf);
}

const modes: Array<[string, ApplyInternals]> = [
  ['calling thread, whole files', { codecThreads: 0 }],
  ['workers, whole files', { codecThreads: 2 }],
  ['workers, files in pieces', { codecThreads: 2, wholeFileJobBytes: 48 << 10, jobBytes: 16 << 10 }],
];

describe.each(modes)('apply jobs: %s', (_name, internals) => {
  if (internals.codecThreads !== 0 && resolveCodecWorkerFile() === undefined) {
    it.skip('needs the compiled worker (npx tsc -b)', () => undefined);
    return;
  }

  it('writes exactly B (copied spans, delta runs, bytes repeated within B)', async () => {
    const { A, B } = await pair();
    const p = join(work, 'p');
    const { stats } = await makePatch({ from: A, to: B, outDir: p, level: 3 });
    expect(stats.internalCopies).toBeGreaterThan(0);
    const out = join(work, 'out');
    const r = await applyPatch({ patch: p, fromDir: A, outDir: out }, internals);
    expect(await snapshot(out)).toEqual(await snapshot(B));
    expect(r.copiedBytes).toBeGreaterThan(BIG / 2);
  });

  it('names the data part and the record when a delta frame is damaged (pointer re-signed)', async () => {
    const { A, B } = await pair();
    const p = join(work, 'p');
    await makePatch({ from: A, to: B, outDir: p, level: 3 });
    const data = await readFile(join(p, DATA_PART_NAME));
    const run = firstRun(data);
    data[run.payloadAt + (run.payloadSize >> 1)] ^= 0x40;
    await resign(p, data);
    const err = await applyPatch({ patch: p, fromDir: A, outDir: join(work, 'out') }, internals).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PatchCorruptError);
    expect((err as PatchCorruptError).part).toBe(DATA_PART_NAME);
    expect((err as PatchCorruptError).offset).toBe(run.offset);
  });

  it('names the data part when a run whose bytes the same file repeats later is damaged', async () => {
    // Without again.bin the new bytes are first written in thrice.bin, which then repeats them: the repeat reads
    // back bytes its file's whole-file check has not covered yet.
    const { A, B } = await pair(false);
    const p = join(work, 'p');
    const { stats } = await makePatch({ from: A, to: B, outDir: p, level: 3 });
    expect(stats.internalCopies).toBeGreaterThan(0);
    const data = await readFile(join(p, DATA_PART_NAME));
    const run = firstRun(data, false);
    data[run.payloadAt + (run.payloadSize >> 1)] ^= 0x40;
    await resign(p, data);
    const err = await applyPatch({ patch: p, fromDir: A, outDir: join(work, 'out') }, internals).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PatchCorruptError);
    expect((err as PatchCorruptError).part).toBe(DATA_PART_NAME);
  });

  it('names the base file when a copied span of it differs', async () => {
    const { A, B } = await pair();
    const p = join(work, 'p');
    await makePatch({ from: A, to: B, outDir: p, level: 3 });
    await flipA(A, 100);
    const err = await applyPatch({ patch: p, fromDir: A, outDir: join(work, 'out') }, internals).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WrongBaseError);
    expect((err as WrongBaseError).path).toBe('data/big.bin');
  });

  it('names the base file when the reference of a delta run differs', async () => {
    const { A, B } = await pair();
    const p = join(work, 'p');
    await makePatch({ from: A, to: B, outDir: p, level: 3 });
    // Every byte of A's file differs at the edit: whichever chunks the run's reference holds, one is damaged.
    const path = join(A, 'data/big.bin');
    const buf = await readFile(path);
    for (let i = EDIT_AT - (64 << 10); i < EDIT_AT + (64 << 10); i++) buf[i] ^= 0x10;
    await writeFile(path, buf);
    const err = await applyPatch({ patch: p, fromDir: A, outDir: join(work, 'out') }, internals).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WrongBaseError);
    expect((err as WrongBaseError).path).toBe('data/big.bin');
  });
});
