// makePatch: A (old build) + B (new build) -> a patch folder (docs/FORMATS.md, "## Patch").

import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileEntry, Manifest } from '../format/types.js';
import {
  BASE_PART_NAME,
  DATA_PART_NAME,
  DEFAULT_REF_CAP_BYTES,
  DEFAULT_RUN_CAP_BYTES,
  DEFAULT_STREAM_RAW_CAP_BYTES,
  DEFAULT_STREAM_REF_CAP_BYTES,
  DATA_PART_VERSION,
  DATA_PART_VERSION_STREAMS,
  MAX_STREAM_WINDOW_LOG,
  STREAM_MIN_NEW_BYTES,
  DEFAULT_WINDOW_LOG,
  DEFAULT_ZSTD_LEVEL,
  MANIFEST_PART_NAME,
  ManifestPartKind,
  MINHASH_SAMPLES_PER_CHUNK,
  PATCH_POINTER_FORMAT,
  PATCH_POINTER_NAME,
  PATCH_POINTER_VERSION,
  RunCodec,
} from './constants.js';
import { PatchInputError } from './errors.js';
import { minHashes } from './fingerprint.js';
import {
  encodeDataPartHeader,
  encodeEndRecord,
  encodeManifestPartHeader,
  encodeRunHeader,
  encodeStreamHeader,
  type PatchPart,
  type PatchPointer,
  type PatchStats,
  type RefSegment,
} from './format.js';
import { canonicalManifestId, encodeManifestCanonical } from './manifest-codec.js';
import { openBuildSide } from './open-side.js';
import type { BuildSide } from './side.js';
import { zstdCompress, zstdCompressLong } from './zstd.js';

export interface PatchProgress {
  /** index: reading A for content fingerprints; encode: compressing B's new runs; write: assembling B; swap: in-place commit. */
  phase: 'index' | 'encode' | 'write' | 'swap';
  doneBytes: number;
  totalBytes: number;
}

export interface MakePatchOptions {
  /** Old build A: an image folder, a tar file, or a plain folder. */
  from: string;
  /** New build B: an image folder, a tar file, or a plain folder. */
  to: string;
  /** Patch folder to create (must not exist or be empty). */
  outDir: string;
  onProgress?: (p: PatchProgress) => void;
  /** zstd level for runs and the manifest delta (default 19). */
  level?: number;
  runCapBytes?: number;
  refCapBytes?: number;
  /** A B file with at least this many new bytes is coded as one stream against its same-path A file (default 8 MiB). */
  streamMinNewBytes?: number;
  /** Largest A file used whole as a stream reference, and largest stream of new bytes (default 128 MiB each). */
  streamCapBytes?: number;
}

export interface MakePatchResult {
  pointer: PatchPointer;
  stats: PatchStats;
}

/**
 * Computes the patch from A to B and writes it to `outDir` (parts are written under temporary
 * names and renamed, the pointer last, so a folder with a patch.json holds a complete patch).
 * Memory: A's and B's manifests, a few fingerprints per chunk of A, and one run + its reference.
 * Errors: PatchInputError for unusable inputs; errors of the image reader for damaged images.
 */
export async function makePatch(opts: MakePatchOptions): Promise<MakePatchResult> {
  const a = await openBuildSide(opts.from);
  let b: BuildSide | undefined;
  try {
    b = await openBuildSide(opts.to, a.manifest.chunking);
    return await makePatchFromSides(a, b, opts);
  } finally {
    await b?.close();
    await a.close();
  }
}

interface Run {
  bFile: number;
  ordinal: number;
  count: number;
  rawSize: number;
  /** Byte offset of the run in its B file. */
  offset: number;
}

const hex = (h: Uint8Array) => Buffer.from(h.buffer, h.byteOffset, h.byteLength).toString('hex');

/** The core, on already opened sides (exported for tests and for callers holding images). */
export async function makePatchFromSides(a: BuildSide, b: BuildSide, opts: Omit<MakePatchOptions, 'from' | 'to'>): Promise<MakePatchResult> {
  const level = opts.level ?? DEFAULT_ZSTD_LEVEL;
  const runCap = opts.runCapBytes ?? DEFAULT_RUN_CAP_BYTES;
  const refCap = opts.refCapBytes ?? DEFAULT_REF_CAP_BYTES;
  const windowLog = Math.max(DEFAULT_WINDOW_LOG, Math.ceil(Math.log2(runCap + refCap)));
  const progress = opts.onProgress ?? (() => {});
  await prepareOutDir(opts.outDir);

  const am = a.manifest;
  const bm = b.manifest;
  const aByHash = new Map<string, number>();
  am.chunks.forEach((c, i) => aByHash.set(hex(c.hash), i));
  // First occurrence of every A chunk: (file, ordinal); -1 when the chunk is in no file.
  const aLocFile = new Int32Array(am.chunks.length).fill(-1);
  const aLocOrd = new Int32Array(am.chunks.length);
  am.files.forEach((f, fi) =>
    f.chunks.forEach((ci, k) => {
      if (aLocFile[ci] < 0) {
        aLocFile[ci] = fi;
        aLocOrd[ci] = k;
      }
    }),
  );
  const aPathIndex = new Map<string, number>();
  am.files.forEach((f, i) => f.type === 'file' && aPathIndex.set(f.path, i));
  const bShared = bm.chunks.map((c) => aByHash.has(hex(c.hash)));

  // Plan: runs of first occurrences of new chunks, in B file order.
  const runs: Run[] = [];
  const emitted = new Uint8Array(bm.chunks.length);
  let internalCopies = 0;
  let newChunks = 0;
  let newRawBytes = 0;
  bm.files.forEach((f, fi) => {
    if (f.type !== 'file') return;
    let cur: Run | undefined;
    let offset = 0;
    f.chunks.forEach((ci, k) => {
      const size = bm.chunks[ci].rawSizeBytes;
      if (bShared[ci] || emitted[ci]) {
        if (!bShared[ci]) internalCopies++;
        cur = undefined;
      } else {
        emitted[ci] = 1;
        newChunks++;
        newRawBytes += size;
        if (!cur || cur.rawSize + size > runCap) {
          cur = { bFile: fi, ordinal: k, count: 0, rawSize: 0, offset };
          runs.push(cur);
        }
        cur.count++;
        cur.rawSize += size;
      }
      offset += size;
    });
  });

  // File streams: B files with many new bytes and a same-path A file small enough to serve whole as
  // the reference (a rebuilt executable: every chunk differs a little, matches lie anywhere in A).
  const streamMin = opts.streamMinNewBytes ?? STREAM_MIN_NEW_BYTES;
  const streamCap = opts.streamCapBytes ?? Math.min(DEFAULT_STREAM_RAW_CAP_BYTES, DEFAULT_STREAM_REF_CAP_BYTES);
  const newByFile = new Map<number, number>();
  for (const r of runs) newByFile.set(r.bFile, (newByFile.get(r.bFile) ?? 0) + r.rawSize);
  /** B file -> A file used whole as its stream reference. */
  const streamRef = new Map<number, number>();
  for (const [bf, bytes] of newByFile) {
    if (bytes < streamMin || bytes > streamCap) continue;
    const af = aPathIndex.get(bm.files[bf].path);
    if (af === undefined) continue;
    const size = am.files[af].sizeBytes;
    if (size > 0 && size <= streamCap && am.files[af].chunks.length > 0) streamRef.set(bf, af);
  }

  // Content index of A (only needed when something is new).
  const fpIndex = new Map<number, number>();
  if (runs.length > 0) {
    const total = am.chunks.reduce((s, c) => s + c.rawSizeBytes, 0);
    let done = 0;
    const wanted: number[] = [];
    for (let ci = 0; ci < am.chunks.length; ci++) if (aLocFile[ci] >= 0) wanted.push(ci);
    const scan = a.scanChunks?.bind(a) ?? readEach(a);
    for await (const { index, raw } of scan(wanted)) {
      for (const v of minHashes(raw, MINHASH_SAMPLES_PER_CHUNK)) if (!fpIndex.has(v)) fpIndex.set(v, index);
      done += raw.length;
      progress({ phase: 'index', doneBytes: done, totalBytes: total });
    }
  }

  const aCache = new ChunkCache(a, 32 << 20);
  const fileOffsets = new Map<number, number[]>();
  const aOffsets = (fi: number): number[] => {
    let o = fileOffsets.get(fi);
    if (!o) {
      o = [0];
      for (const ci of am.files[fi].chunks) o.push(o[o.length - 1] + am.chunks[ci].rawSizeBytes);
      fileOffsets.set(fi, o);
    }
    return o;
  };

  const dataTmp = join(opts.outDir, `${DATA_PART_NAME}.tmp`);
  const fh = await open(dataTmp, 'w');
  const dataHash = createHash('sha256');
  let dataBytes = 0;
  const put = async (buf: Uint8Array) => {
    dataHash.update(buf);
    await fh.write(buf, 0, buf.length, dataBytes);
    dataBytes += buf.length;
  };
  const encB = encodeManifestCanonical(bm);
  const encA = encodeManifestCanonical(am);
  const bId = canonicalManifestId(encB);
  const aId = canonicalManifestId(encA);
  let deltaRuns = 0;
  let streams = 0;
  try {
    await put(
      encodeDataPartHeader({ version: streamRef.size > 0 ? DATA_PART_VERSION_STREAMS : DATA_PART_VERSION, level, windowLog, runCapBytes: runCap, targetId: bId }),
    );
    let done = 0;
    let streamFile = -1;
    for (const run of runs) {
      const f = bm.files[run.bFile];
      const af = streamRef.get(run.bFile);
      if (af !== undefined) {
        if (streamFile !== run.bFile) {
          // First run of a stream file: one frame for all its new bytes, the whole A file as reference.
          streamFile = run.bFile;
          const mine = runs.filter((r) => r.bFile === run.bFile);
          const pieces: Buffer[] = [];
          for (const r of mine) for (let k = r.ordinal; k < r.ordinal + r.count; k++) pieces.push(await b.readChunk(f.chunks[k]));
          const raw = Buffer.concat(pieces);
          pieces.length = 0;
          const refPieces: Buffer[] = [];
          for (const ci of am.files[af].chunks) refPieces.push(await a.readChunk(ci));
          const ref = Buffer.concat(refPieces);
          refPieces.length = 0;
          const wl = Math.min(MAX_STREAM_WINDOW_LOG, Math.max(DEFAULT_WINDOW_LOG, Math.ceil(Math.log2(ref.length + raw.length))));
          const payload = zstdCompressLong(raw, { level, windowLog: wl }, ref);
          const refs: RefSegment[] = [{ aFile: af, ordinal: 0, count: am.files[af].chunks.length }];
          await put(encodeStreamHeader({ bFile: run.bFile, rawSize: raw.length, windowLog: wl, refs, payloadSize: payload.length }));
          await put(payload);
          streams++;
        }
        await put(encodeRunHeader({ bFile: run.bFile, ordinal: run.ordinal, count: run.count, rawSize: run.rawSize, codec: RunCodec.Stream, refs: [], payloadSize: 0 }));
        done += run.rawSize;
        progress({ phase: 'encode', doneBytes: done, totalBytes: newRawBytes });
        continue;
      }
      const pieces: Buffer[] = [];
      for (let k = run.ordinal; k < run.ordinal + run.count; k++) pieces.push(await b.readChunk(f.chunks[k]));
      const raw = Buffer.concat(pieces);
      const refs = chooseReference(run, f, pieces, {
        am,
        bm,
        bShared,
        aByHash,
        aLocFile,
        aLocOrd,
        aPathIndex,
        aOffsets,
        fpIndex,
        refCap,
      });
      let codec = RunCodec.Zstd;
      let payload: Buffer;
      if (refs.length > 0) {
        const ref: Buffer[] = [];
        for (const s of refs) for (let k = s.ordinal; k < s.ordinal + s.count; k++) ref.push(await aCache.get(am.files[s.aFile].chunks[k]));
        payload = zstdCompress(raw, { level, windowLog }, Buffer.concat(ref));
        codec = RunCodec.ZstdDelta;
      } else {
        payload = zstdCompress(raw, { level, windowLog });
      }
      if (payload.length >= raw.length) {
        payload = raw;
        codec = RunCodec.Raw;
      }
      if (codec === RunCodec.ZstdDelta) deltaRuns++;
      await put(
        encodeRunHeader({
          bFile: run.bFile,
          ordinal: run.ordinal,
          count: run.count,
          rawSize: run.rawSize,
          codec,
          refs: codec === RunCodec.ZstdDelta ? refs : [],
          payloadSize: payload.length,
        }),
      );
      await put(payload);
      done += run.rawSize;
      progress({ phase: 'encode', doneBytes: done, totalBytes: newRawBytes });
    }
    await put(encodeEndRecord(runs.length));
  } finally {
    await fh.close();
  }
  await rename(dataTmp, join(opts.outDir, DATA_PART_NAME));

  const manifestWindowLog = Math.min(30, Math.max(10, Math.ceil(Math.log2(encA.length + encB.length + 1))));
  const manifestPart = Buffer.concat([
    encodeManifestPartHeader({ kind: ManifestPartKind.DeltaFromBase, level, windowLog: manifestWindowLog, rawSize: encB.length, baseId: aId, targetId: bId }),
    zstdCompress(encB, { level, windowLog: manifestWindowLog }, encA),
  ]);
  const baseWindowLog = Math.min(30, Math.max(10, Math.ceil(Math.log2(encA.length + 1))));
  const basePart = Buffer.concat([
    encodeManifestPartHeader({ kind: ManifestPartKind.Full, level, windowLog: baseWindowLog, rawSize: encA.length, baseId: '', targetId: aId }),
    zstdCompress(encA, { level, windowLog: baseWindowLog }),
  ]);
  await writeFile(join(opts.outDir, MANIFEST_PART_NAME), manifestPart);
  await writeFile(join(opts.outDir, BASE_PART_NAME), basePart);
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  const parts: PatchPart[] = [
    { role: 'manifest', name: MANIFEST_PART_NAME, sizeBytes: manifestPart.length, sha256: sha(manifestPart) },
    { role: 'data', name: DATA_PART_NAME, sizeBytes: dataBytes, sha256: dataHash.digest('hex') },
    { role: 'baseManifest', name: BASE_PART_NAME, sizeBytes: basePart.length, sha256: sha(basePart) },
  ];
  const stats: PatchStats = {
    patchBytes: manifestPart.length + dataBytes,
    baseManifestBytes: basePart.length,
    filesInTarget: bm.files.length,
    chunksInTarget: bm.chunks.length,
    sharedChunks: bShared.filter(Boolean).length,
    newChunks,
    newRawBytes,
    runs: runs.length,
    deltaRuns,
    internalCopies,
    streams,
  };
  const pointer: PatchPointer = {
    format: PATCH_POINTER_FORMAT,
    formatVersion: PATCH_POINTER_VERSION,
    from: { manifestId: aId },
    to: { manifestId: bId },
    parts,
    stats,
  };
  const ptrTmp = join(opts.outDir, `${PATCH_POINTER_NAME}.tmp`);
  await writeFile(ptrTmp, JSON.stringify(pointer) + '\n');
  await rename(ptrTmp, join(opts.outDir, PATCH_POINTER_NAME));
  return { pointer, stats };
}

function readEach(side: BuildSide) {
  return async function* (indexes: readonly number[]) {
    for (const index of indexes) yield { index, raw: await side.readChunk(index) };
  };
}

async function prepareOutDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const names = await readdir(dir);
  if (names.length > 0) {
    // Leftovers of an interrupted make (no pointer yet) are ours to replace; anything else is not.
    if (names.some((n) => !n.endsWith('.tmp'))) throw new PatchInputError(`output folder is not empty: ${dir}`);
    for (const n of names) await rm(join(dir, n), { force: true });
  }
}

interface RefContext {
  am: Manifest;
  bm: Manifest;
  bShared: boolean[];
  aByHash: Map<string, number>;
  aLocFile: Int32Array;
  aLocOrd: Int32Array;
  aPathIndex: Map<string, number>;
  aOffsets: (fi: number) => number[];
  fpIndex: Map<number, number>;
  refCap: number;
}

/**
 * Picks reference segments of A for one run: by location first (the A bytes that sit between
 * the shared chunks around the run, or the same offsets of the same path), then by content
 * (A chunks sharing min-hashes with the run). Order matters for zstd: the most likely match
 * sources go last, nearest to the data. Total size stays within refCap.
 */
function chooseReference(run: Run, f: FileEntry, pieces: Buffer[], ctx: RefContext): RefSegment[] {
  const { am, bm, aLocFile, aLocOrd } = ctx;
  const margin = Math.max(256 << 10, run.rawSize >> 1);
  let budget = ctx.refCap;
  const covered = new Map<number, Array<[number, number]>>();
  const isCovered = (fi: number, ord: number) => (covered.get(fi) ?? []).some(([s, e]) => ord >= s && ord < e);
  const location: RefSegment[] = [];
  // Adds the chunks [from, to) of A file fi, skipping covered ones, within budget; `forward` says which end to keep.
  const addSpan = (out: RefSegment[], fi: number, from: number, to: number, forward: boolean): void => {
    const list = am.files[fi].chunks;
    from = Math.max(0, from);
    to = Math.min(list.length, to);
    const ords: number[] = [];
    if (forward) for (let k = from; k < to; k++) ords.push(k);
    else for (let k = to - 1; k >= from; k--) ords.push(k);
    const picked: number[] = [];
    for (const k of ords) {
      if (isCovered(fi, k)) continue;
      const size = am.chunks[list[k]].rawSizeBytes;
      if (size > budget) break;
      budget -= size;
      picked.push(k);
    }
    picked.sort((x, y) => x - y);
    for (const k of picked) {
      const last = out[out.length - 1];
      if (last && last.aFile === fi && last.ordinal + last.count === k) last.count++;
      else out.push({ aFile: fi, ordinal: k, count: 1 });
      const c = covered.get(fi) ?? [];
      c.push([k, k + 1]);
      covered.set(fi, c);
    }
  };
  const want = run.rawSize + margin;
  const spanForward = (fi: number, startOrd: number, bytes: number) => {
    const list = am.files[fi].chunks;
    let k = startOrd;
    let acc = 0;
    while (k < list.length && acc < bytes) acc += am.chunks[list[k++]].rawSizeBytes;
    return k;
  };
  const spanBackward = (fi: number, endOrd: number, bytes: number) => {
    const list = am.files[fi].chunks;
    let k = endOrd;
    let acc = 0;
    while (k > 0 && acc < bytes) acc += am.chunks[list[--k]].rawSizeBytes;
    return k;
  };
  // Anchors: the nearest shared chunks before and after the run in B's file.
  let before = -1;
  for (let k = run.ordinal - 1; k >= 0; k--) if (ctx.bShared[f.chunks[k]]) { before = k; break; }
  let after = -1;
  for (let k = run.ordinal + run.count; k < f.chunks.length; k++) if (ctx.bShared[f.chunks[k]]) { after = k; break; }
  const anchorA = (bOrd: number) => ctx.aByHash.get(hex(bm.chunks[f.chunks[bOrd]].hash))!;
  if (after >= 0) {
    const ai = anchorA(after);
    if (aLocFile[ai] >= 0) addSpan(location, aLocFile[ai], spanBackward(aLocFile[ai], aLocOrd[ai], want), aLocOrd[ai], false);
  }
  if (before >= 0) {
    const ai = anchorA(before);
    if (aLocFile[ai] >= 0) addSpan(location, aLocFile[ai], aLocOrd[ai] + 1, spanForward(aLocFile[ai], aLocOrd[ai] + 1, want), true);
  }
  if (before < 0 && after < 0) {
    const fi = ctx.aPathIndex.get(f.path);
    if (fi !== undefined) {
      const offs = ctx.aOffsets(fi);
      let k = 0;
      while (k < offs.length - 1 && offs[k + 1] <= run.offset - margin) k++;
      addSpan(location, fi, k, spanForward(fi, k, run.rawSize + 2 * margin), true);
    }
  }
  // Content similarity: vote for A chunks sharing min-hashes with the run's chunks.
  const similar: RefSegment[] = [];
  if (ctx.fpIndex.size > 0 && budget > 0) {
    const votes = new Map<number, number>();
    const step = Math.max(1, Math.floor(pieces.length / 64));
    for (let i = 0; i < pieces.length; i += step) {
      for (const v of minHashes(pieces[i], MINHASH_SAMPLES_PER_CHUNK)) {
        const ai = ctx.fpIndex.get(v);
        if (ai !== undefined) votes.set(ai, (votes.get(ai) ?? 0) + 1);
      }
    }
    const ranked = [...votes.entries()].sort((x, y) => y[1] - x[1] || x[0] - y[0]);
    for (const [ai] of ranked) {
      if (budget <= 0) break;
      const fi = aLocFile[ai];
      if (fi < 0 || isCovered(fi, aLocOrd[ai])) continue;
      addSpan(similar, fi, aLocOrd[ai] - 1, aLocOrd[ai] + 2, true);
    }
  }
  return [...similar, ...location];
}

/** A byte-bounded LRU of A's chunks (reference reads revisit neighbours). */
class ChunkCache {
  private map = new Map<number, Buffer>();
  private bytes = 0;
  constructor(
    private readonly side: BuildSide,
    private readonly capBytes: number,
  ) {}

  async get(index: number): Promise<Buffer> {
    const hit = this.map.get(index);
    if (hit) {
      this.map.delete(index);
      this.map.set(index, hit);
      return hit;
    }
    const buf = await this.side.readChunk(index);
    this.map.set(index, buf);
    this.bytes += buf.length;
    while (this.bytes > this.capBytes) {
      const [k, v] = this.map.entries().next().value as [number, Buffer];
      this.map.delete(k);
      this.bytes -= v.length;
    }
    return buf;
  }
}
