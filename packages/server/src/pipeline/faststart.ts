// FastStart training glue (issue 14 item 3, server side): traces → chunk first-need times on an
// image's manifest (by path and offset, so traces of an older build map onto a new build), a stream
// order, the load profile and the predicted preload at the reference bandwidths. Pure functions over
// the manifest: no chunk payload is read here (repackImage writes the re-sequenced image).
import type { LoadProfile, Manifest, Trace } from '@rockit/engine';

/** The reference bandwidths of api.md §10 `quality.preloadBytes` (bits per second). */
export const REFERENCE_BANDWIDTHS = { '25Mbit': 25e6, '100Mbit': 100e6, '1Gbit': 1e9 } as const;
export type PreloadFigures = Record<keyof typeof REFERENCE_BANDWIDTHS, number>;

/** Most profile points stored (the upper envelope is thinned to this). */
const MAX_PROFILE_POINTS = 512;

/** One trace seen on one manifest: when each chunk is first needed, and how much of it fell on the build. */
export interface MappedTrace {
  /** chunk index → first tMs it is read. */
  firstNeed: Map<number, number>;
  /** Read bytes that fall on files/offsets of the build. */
  coveredBytes: number;
  readBytes: number;
  firstSession: boolean;
}

interface FileIndex {
  chunks: number[];
  /** ends[i] = offset just past chunk i of the file. */
  ends: number[];
}

/** Path → chunk layout of every regular file of the manifest. */
export function indexManifest(m: Manifest): Map<string, FileIndex> {
  const out = new Map<string, FileIndex>();
  for (const f of m.files) {
    if (f.chunks.length === 0) continue;
    let end = 0;
    const ends = f.chunks.map((ci) => (end += m.chunks[ci].rawSizeBytes));
    out.set(f.path, { chunks: f.chunks, ends });
  }
  return out;
}

/** Maps a trace onto a manifest by path and offset; reads outside the build's files count as uncovered. */
export function mapTrace(index: Map<string, FileIndex>, trace: Trace): MappedTrace {
  const firstNeed = new Map<number, number>();
  let coveredBytes = 0;
  let readBytes = 0;
  for (const r of trace.records) {
    readBytes += r.lengthBytes;
    const f = index.get(r.path);
    if (!f || r.lengthBytes <= 0) continue;
    const size = f.ends[f.ends.length - 1];
    const start = r.offsetBytes;
    const end = Math.min(size, r.offsetBytes + r.lengthBytes);
    if (start >= end) continue;
    coveredBytes += end - start;
    // First chunk whose end is past `start` (binary search), then forward until `end`.
    let lo = 0;
    let hi = f.ends.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (f.ends[mid] > start) hi = mid;
      else lo = mid + 1;
    }
    for (let i = lo; i < f.chunks.length; i++) {
      const ci = f.chunks[i];
      if (!firstNeed.has(ci)) firstNeed.set(ci, r.tMs);
      if (f.ends[i] >= end) break;
    }
  }
  return { firstNeed, coveredBytes, readBytes, firstSession: trace.header.firstSession };
}

/** Mean coverage (0..1) over the traces; 0 for none. */
export function meanCoverage(traces: MappedTrace[]): number {
  if (traces.length === 0) return 0;
  return traces.reduce((a, t) => a + (t.readBytes === 0 ? 0 : t.coveredBytes / t.readBytes), 0) / traces.length;
}

/**
 * A stream order from the traces: chunks most sessions need come first, by their weighted mean
 * first-need time (first sessions weigh double: they are the ones FastStart is for); chunks fewer
 * sessions need follow by the same key; chunks no session read keep their relative order after
 * the read ones, each file's unread chunks right after that file's last read one when the file
 * was read at all (held-out sessions tend to read neighbours of what others read).
 */
export function trainOrder(m: Manifest, traces: MappedTrace[]): number[] {
  const n = m.chunks.length;
  const weightSum = traces.reduce((a, t) => a + (t.firstSession ? 2 : 1), 0) || 1;
  const share = new Float64Array(n);
  const timeSum = new Float64Array(n);
  for (const t of traces) {
    const w = t.firstSession ? 2 : 1;
    for (const [ci, tMs] of t.firstNeed) {
      share[ci] += w;
      timeSum[ci] += w * tMs;
    }
  }
  const read: number[] = [];
  for (let ci = 0; ci < n; ci++) if (share[ci] > 0) read.push(ci);
  const key = (ci: number): [number, number] => [share[ci] / weightSum >= 0.5 ? 0 : 1, timeSum[ci] / share[ci]];
  read.sort((a, b) => {
    const [ga, ta] = key(a);
    const [gb, tb] = key(b);
    return ga - gb || ta - tb || a - b;
  });
  // Unread chunks: after the read ones, grouped behind the position of their file's latest read chunk.
  const pos = new Int32Array(n).fill(-1);
  read.forEach((ci, i) => (pos[ci] = i));
  const tail: Array<{ ci: number; after: number }> = [];
  const placed = new Uint8Array(n);
  for (const ci of read) placed[ci] = 1;
  for (const f of m.files) {
    let after = -1;
    for (const ci of f.chunks) if (pos[ci] > after) after = pos[ci];
    for (const ci of f.chunks) {
      if (placed[ci]) continue;
      placed[ci] = 1;
      tail.push({ ci, after: after < 0 ? Number.MAX_SAFE_INTEGER : after });
    }
  }
  for (let ci = 0; ci < n; ci++) if (!placed[ci]) tail.push({ ci, after: Number.MAX_SAFE_INTEGER });
  tail.sort((a, b) => a.after - b.after || a.ci - b.ci);
  return [...read, ...tail.map((t) => t.ci)];
}

/**
 * The load profile of a stream order: for each time t at which some training session first needs a
 * chunk, the stream bytes (stored sizes, in `order`) that must have arrived by t so that no session
 * stalls — the upper envelope over the sessions, thinned to at most MAX_PROFILE_POINTS points while
 * never under-stating a need.
 */
export function profileOf(m: Manifest, order: readonly number[], traces: MappedTrace[]): LoadProfile {
  const endOf = new Float64Array(m.chunks.length);
  let cum = 0;
  for (const ci of order) endOf[ci] = cum += m.chunks[ci].storedSizeBytes;
  const needAt = new Map<number, number>();
  for (const t of traces) {
    for (const [ci, tMs] of t.firstNeed) needAt.set(tMs, Math.max(needAt.get(tMs) ?? 0, endOf[ci]));
  }
  const times = [...needAt.keys()].sort((a, b) => a - b);
  let points: Array<{ tMs: number; needBytes: number }> = [];
  // Need at t = the most any session needs by t: a running maximum; keep only points that raise it.
  let best = 0;
  for (const tMs of times) {
    const need = needAt.get(tMs)!;
    if (need > best) {
      best = need;
      points.push({ tMs, needBytes: need });
    }
  }
  if (points.length > MAX_PROFILE_POINTS) {
    // Merge neighbours: a merged point takes the earliest time and the largest need (conservative).
    const step = Math.ceil(points.length / MAX_PROFILE_POINTS);
    const thinned: typeof points = [];
    for (let i = 0; i < points.length; i += step) {
      const group = points.slice(i, i + step);
      thinned.push({ tMs: group[0].tMs, needBytes: group[group.length - 1].needBytes });
    }
    points = thinned;
  }
  return { points };
}

/** Preload (bytes) that avoids every stall of the profile at `bitsPerSecond`: max over points of need − bytes streamed by t. */
export function preloadFromProfile(profile: LoadProfile, bitsPerSecond: number): number {
  const bytesPerMs = bitsPerSecond / 8 / 1000;
  let p = 0;
  for (const pt of profile.points) p = Math.max(p, pt.needBytes - bytesPerMs * pt.tMs);
  return Math.ceil(p);
}

/** preloadFromProfile at the three reference bandwidths. */
export function preloadFigures(profile: LoadProfile): PreloadFigures {
  return {
    '25Mbit': preloadFromProfile(profile, REFERENCE_BANDWIDTHS['25Mbit']),
    '100Mbit': preloadFromProfile(profile, REFERENCE_BANDWIDTHS['100Mbit']),
    '1Gbit': preloadFromProfile(profile, REFERENCE_BANDWIDTHS['1Gbit']),
  };
}

/**
 * Whether `next` predicts a smaller preload than `previous`: better at 100 Mbit/s (the reference
 * broadband figure) and worse at none of the three bandwidths.
 */
export function preloadImproves(previous: PreloadFigures, next: PreloadFigures): boolean {
  const keys = Object.keys(REFERENCE_BANDWIDTHS) as Array<keyof PreloadFigures>;
  return next['100Mbit'] < previous['100Mbit'] && keys.every((k) => next[k] <= previous[k]);
}
