// FastStart glue of the trace task (issue 14 item 3, server side; the training itself is the
// engine's trainStreamOrder): traces → chunk first-need times on an image's manifest (by path and
// offset, so traces of an older build map onto a new build), coverage, and one measure to compare
// two stream orders — the preload that spares every training session a stall. Pure functions over
// the manifest: no chunk payload is read here (repackImage writes the re-sequenced image).
import { ChunkMap, preloadBytes, type LoadProfile, type Manifest, type Trace } from '@rockit/engine';

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

/** Path → chunk layout of every regular file (and hard link) of the manifest: the engine's ChunkMap. */
export function indexManifest(m: Manifest): ChunkMap {
  return new ChunkMap(m);
}

/** Maps a trace onto a manifest by path and offset; reads outside the build's files count as uncovered. */
export function mapTrace(index: ChunkMap, trace: Trace): MappedTrace {
  const firstNeed = new Map<number, number>();
  let coveredBytes = 0;
  let readBytes = 0;
  for (const r of trace.records) {
    readBytes += r.lengthBytes;
    const unmapped = index.forEachChunk(r, (ci) => {
      if (!firstNeed.has(ci)) firstNeed.set(ci, r.tMs);
    });
    // A placed read is clipped at the file's end, as forEachChunk clips it.
    if (unmapped === null) coveredBytes += Math.min(index.fileSize(r.path)!, r.offsetBytes + r.lengthBytes) - r.offsetBytes;
  }
  return { firstNeed, coveredBytes, readBytes, firstSession: trace.header.firstSession };
}

/** Mean coverage (0..1) over the traces; 0 for none. */
export function meanCoverage(traces: MappedTrace[]): number {
  if (traces.length === 0) return 0;
  return traces.reduce((a, t) => a + (t.readBytes === 0 ? 0 : t.coveredBytes / t.readBytes), 0) / traces.length;
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

/** Preload (bytes) that avoids every stall of the profile at `bitsPerSecond` (the engine's P(b); these profiles carry no margin). */
export function preloadFromProfile(profile: LoadProfile, bitsPerSecond: number): number {
  return preloadBytes(profile, bitsPerSecond / 8);
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
