// Reference bytes of A for one run of new B chunks (makePatch): the run is compressed with zstd against them,
// so the better they match the run, the smaller the patch.

import type { FileEntry, Manifest } from '../format/types.js';
import { hex } from '../image/reader.js';
import { MINHASH_SAMPLES_PER_CHUNK } from './constants.js';
import { minHashes } from './fingerprint.js';
import type { RefSegment } from './format.js';
import type { BaseIndex, Run } from './make-plan.js';

/** What chooseReference knows of A and B: the base index plus A's chunk offsets and content fingerprints. */
export interface RefContext extends BaseIndex {
  am: Manifest;
  bm: Manifest;
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
export function chooseReference(run: Run, f: FileEntry, pieces: Buffer[], ctx: RefContext): RefSegment[] {
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
