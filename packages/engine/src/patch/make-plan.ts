// What makePatch ships, decided from the two manifests before any byte of B is read: where A's chunks lie,
// which chunks of B are new (grouped into runs), which B files are coded as one stream against their same-path
// A file, and the content fingerprints of A used to find reference bytes for the other runs.

import type { Manifest } from '../format/types.js';
import { hex } from '../image/reader.js';
import { MINHASH_SAMPLES_PER_CHUNK } from './constants.js';
import { minHashes } from './fingerprint.js';
import type { PatchProgress } from './make.js';
import type { BuildSide } from './side.js';

/** New chunks of B shipped together, consecutive in one B file. */
export interface Run {
  bFile: number;
  ordinal: number;
  count: number;
  rawSize: number;
  /** Byte offset of the run in its B file. */
  offset: number;
}

/** Where A's chunks are, and which of B's chunks A has. */
export interface BaseIndex {
  aByHash: Map<string, number>;
  /** First occurrence of every A chunk: (file, ordinal); file -1 when the chunk is in no file. */
  aLocFile: Int32Array;
  aLocOrd: Int32Array;
  /** A's regular files by path. */
  aPathIndex: Map<string, number>;
  /** For each chunk of B: whether A has it (then it is copied at apply time, never shipped). */
  bShared: boolean[];
}

export interface RunPlan {
  runs: Run[];
  /** Chunk references of B to a new chunk already shipped earlier in B. */
  internalCopies: number;
  newChunks: number;
  newRawBytes: number;
}

export function indexBase(am: Manifest, bm: Manifest): BaseIndex {
  const aByHash = new Map<string, number>();
  am.chunks.forEach((c, i) => aByHash.set(hex(c.hash), i));
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
  return { aByHash, aLocFile, aLocOrd, aPathIndex, bShared };
}

/** Runs of first occurrences of new chunks, in B file order, each at most `runCap` raw bytes (or one chunk). */
export function planRuns(bm: Manifest, bShared: boolean[], runCap: number): RunPlan {
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
  return { runs, internalCopies, newChunks, newRawBytes };
}

/**
 * File streams: B files with many new bytes and a same-path A file small enough to serve whole as
 * the reference (a rebuilt executable: every chunk differs a little, matches lie anywhere in A).
 * Returns B file -> A file used whole as its stream reference.
 */
export function chooseStreams(runs: Run[], am: Manifest, bm: Manifest, aPathIndex: Map<string, number>, streamMin: number, streamCap: number): Map<number, number> {
  const newByFile = new Map<number, number>();
  for (const r of runs) newByFile.set(r.bFile, (newByFile.get(r.bFile) ?? 0) + r.rawSize);
  const streamRef = new Map<number, number>();
  for (const [bf, bytes] of newByFile) {
    if (bytes < streamMin || bytes > streamCap) continue;
    const af = aPathIndex.get(bm.files[bf].path);
    if (af === undefined) continue;
    const size = am.files[af].sizeBytes;
    if (size > 0 && size <= streamCap && am.files[af].chunks.length > 0) streamRef.set(bf, af);
  }
  return streamRef;
}

/** Content index of A: min-hash -> first A chunk that has it (reads every A chunk that lies in a file once). */
export async function indexContent(a: BuildSide, aLocFile: Int32Array, progress: (p: PatchProgress) => void): Promise<Map<number, number>> {
  const am = a.manifest;
  const fpIndex = new Map<number, number>();
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
  return fpIndex;
}

function readEach(side: BuildSide) {
  return async function* (indexes: readonly number[]) {
    for (const index of indexes) yield { index, raw: await side.readChunk(index) };
  };
}
