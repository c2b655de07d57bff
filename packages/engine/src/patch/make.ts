// makePatch: A (old build) + B (new build) -> a patch folder (docs/FORMATS.md, "## Patch").
// The steps live beside this file: make-plan (what is new, grouped into runs and streams), make-reference
// (reference bytes of A for a run), make-data (the data part). This file writes the manifest parts and the
// pointer.

import { createHash } from 'node:crypto';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  BASE_PART_NAME,
  DEFAULT_REF_CAP_BYTES,
  DEFAULT_RUN_CAP_BYTES,
  DEFAULT_STREAM_RAW_CAP_BYTES,
  DEFAULT_STREAM_REF_CAP_BYTES,
  STREAM_MIN_NEW_BYTES,
  DEFAULT_WINDOW_LOG,
  DEFAULT_ZSTD_LEVEL,
  MANIFEST_PART_NAME,
  ManifestPartKind,
  DATA_PART_NAME,
  PATCH_POINTER_FORMAT,
  PATCH_POINTER_NAME,
  PATCH_POINTER_VERSION,
} from './constants.js';
import type { Manifest } from '../format/types.js';
import { PatchInputError } from './errors.js';
import { encodeManifestPartHeader, type PatchPart, type PatchPointer, type PatchStats } from './format.js';
import { writeDataPart, type DataPartResult } from './make-data.js';
import { chooseStreams, indexBase, indexContent, planRuns } from './make-plan.js';
import type { RefContext } from './make-reference.js';
import { canonicalManifestId, encodeManifestCanonical } from './manifest-codec.js';
import { openBuildSide } from './open-side.js';
import type { BuildSide } from './side.js';
import { zstdCompress } from './zstd.js';

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
  /** zstd threads coding the runs (default: the available cores, at most 8; 0 codes on the calling thread). */
  threads?: number;
}

/** Each zstd thread holds its own contexts (tens of MiB at high levels): more threads than this do not pay. */
const MAX_DEFAULT_THREADS = 8;

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
  const base = indexBase(am, bm);
  const plan = planRuns(bm, base.bShared, runCap);
  const streamMin = opts.streamMinNewBytes ?? STREAM_MIN_NEW_BYTES;
  const streamCap = opts.streamCapBytes ?? Math.min(DEFAULT_STREAM_RAW_CAP_BYTES, DEFAULT_STREAM_REF_CAP_BYTES);
  const streamRef = chooseStreams(plan.runs, am, bm, base.aPathIndex, streamMin, streamCap);
  // Content index of A (only needed when something is new).
  const fpIndex = plan.runs.length > 0 ? await indexContent(a, base.aLocFile, progress) : new Map<number, number>();
  const ctx: RefContext = { ...base, am, bm, aOffsets: chunkOffsets(am), fpIndex, refCap };

  const encB = encodeManifestCanonical(bm);
  const encA = encodeManifestCanonical(am);
  const bId = canonicalManifestId(encB);
  const aId = canonicalManifestId(encA);
  const threads = opts.threads ?? Math.min(MAX_DEFAULT_THREADS, availableParallelism());
  const data = await writeDataPart(a, b, plan, streamRef, ctx, { level, windowLog, runCap, threads }, bId, opts.outDir, progress);
  const { manifestPart, basePart } = await writeManifestParts(opts.outDir, encA, encB, aId, bId, level);
  const stats: PatchStats = {
    patchBytes: manifestPart.length + data.sizeBytes,
    baseManifestBytes: basePart.length,
    filesInTarget: bm.files.length,
    chunksInTarget: bm.chunks.length,
    sharedChunks: base.bShared.filter(Boolean).length,
    newChunks: plan.newChunks,
    newRawBytes: plan.newRawBytes,
    runs: plan.runs.length,
    deltaRuns: data.deltaRuns,
    internalCopies: plan.internalCopies,
    streams: data.streams,
  };
  const pointer: PatchPointer = {
    format: PATCH_POINTER_FORMAT,
    formatVersion: PATCH_POINTER_VERSION,
    from: { manifestId: aId },
    to: { manifestId: bId },
    parts: partsOf(manifestPart, data, basePart),
    stats,
  };
  const ptrTmp = join(opts.outDir, `${PATCH_POINTER_NAME}.tmp`);
  await writeFile(ptrTmp, JSON.stringify(pointer) + '\n');
  await rename(ptrTmp, join(opts.outDir, PATCH_POINTER_NAME));
  return { pointer, stats };
}

/** Byte offsets of the chunks of each A file, computed on first use (one more entry than chunks). */
function chunkOffsets(am: Manifest): (fi: number) => number[] {
  const fileOffsets = new Map<number, number[]>();
  return (fi: number): number[] => {
    let o = fileOffsets.get(fi);
    if (!o) {
      o = [0];
      for (const ci of am.files[fi].chunks) o.push(o[o.length - 1] + am.chunks[ci].rawSizeBytes);
      fileOffsets.set(fi, o);
    }
    return o;
  };
}

/** B's manifest as a zstd delta against A's, and A's on its own (for callers that do not keep it). */
async function writeManifestParts(outDir: string, encA: Buffer, encB: Buffer, aId: string, bId: string, level: number): Promise<{ manifestPart: Buffer; basePart: Buffer }> {
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
  await writeFile(join(outDir, MANIFEST_PART_NAME), manifestPart);
  await writeFile(join(outDir, BASE_PART_NAME), basePart);
  return { manifestPart, basePart };
}

function partsOf(manifestPart: Buffer, data: DataPartResult, basePart: Buffer): PatchPart[] {
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  return [
    { role: 'manifest', name: MANIFEST_PART_NAME, sizeBytes: manifestPart.length, sha256: sha(manifestPart) },
    { role: 'data', name: DATA_PART_NAME, sizeBytes: data.sizeBytes, sha256: data.sha256 },
    { role: 'baseManifest', name: BASE_PART_NAME, sizeBytes: basePart.length, sha256: sha(basePart) },
  ];
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
