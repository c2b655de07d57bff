// Fitting the preload to the launcher (issue 14): P(b) from the need curve is the preload that spares the median
// session a stall with the stream alone; a launcher with priority fetch often does better with less (a rare read
// costs one round trip, not seconds of preload for everyone) and sometimes with more (fewer round trips at high
// bandwidth). For every margin-table bandwidth this picks, among preloads around the curve's, the one with the
// least mean launcher cost (startup + stallWeight × stalls, priority fetch; a stall in play is worse for the
// player than the same wait before play, and without that weight the fit would drop the preload) on sessions left out of the order they are replayed
// against (the leave-one-out folds), so the choice is judged on sessions the order did not see.
import type { Manifest } from '../format/types.js';
import type { Trace } from '../trace/trace-types.js';
import type { ProfilePoint } from './profile.js';
import { simulateSession } from './simulate.js';

/** One leave-one-out fold: the order trained without `held`, and `held` itself (records in time order). */
export interface FitFold {
  order: Int32Array;
  held: Trace;
}

export interface FitOptions {
  /** Bandwidths (bytes/s) to fit, ascending. */
  bandwidths: readonly number[];
  /** Per bandwidth, the reference preload (the curve's P(b) plus its leave-one-out margin). */
  floor: readonly number[];
  /** Stored bytes of the whole stream (caps the candidates). */
  streamBytes: number;
  /** Priority-fetch round trip assumed (ms). */
  roundTripMs: number;
  /** Weight of a second of stall in play against a second of waiting before play (≥ 1). */
  stallWeight: number;
}

/** Preloads tried: multiples of the reference and steps of the stream's size above it. */
const FLOOR_FACTORS = [0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3];
const STREAM_SHARES = [0.005, 0.01, 0.02, 0.04];

/** The same build with its chunks stored in `order` (simulation only: packs and offsets do not matter). */
export function reorderedManifest(m: Manifest, order: Int32Array): Manifest {
  const newIndex = new Int32Array(order.length);
  order.forEach((c, i) => (newIndex[c] = i));
  const out: Manifest = {
    ...m,
    chunks: Array.from(order, (c) => m.chunks[c]),
    files: m.files.map((f) => (f.type === 'file' ? { ...f, chunks: f.chunks.map((c) => newIndex[c]) } : f)),
  };
  delete out.profile;
  return out;
}

/** Candidate preloads for one bandwidth, ascending and distinct (0 first). */
export function preloadCandidates(floor: number, streamBytes: number): number[] {
  const c = new Set<number>();
  for (const f of FLOOR_FACTORS) c.add(Math.min(streamBytes, Math.ceil(floor * f)));
  for (const s of STREAM_SHARES) c.add(Math.min(streamBytes, Math.ceil(floor + s * streamBytes)));
  return [...c].sort((a, b) => a - b);
}

/**
 * Per bandwidth, the candidate preload with the least mean launcher cost (startup + stallWeight × stalls) over the folds' held-out sessions; a
 * larger preload must beat the best smaller one by over 1 % (ties keep the lower one). Deterministic.
 */
export function fitPreloads(manifest: Manifest, folds: readonly FitFold[], o: FitOptions): number[] {
  const manifests = folds.map((f) => reorderedManifest(manifest, f.order));
  return o.bandwidths.map((b, bi) => {
    let best = 0;
    let bestWait = Infinity;
    let worse = 0;
    for (const p of preloadCandidates(o.floor[bi], o.streamBytes)) {
      // The cost is close to convex in the preload: after three candidates in a row that do not improve, stop.
      if (worse >= 3) break;
      let sum = 0;
      folds.forEach((f, k) => {
        const l = simulateSession(manifests[k], f.held, { bytesPerSecond: b, preloadBytes: p, roundTripMs: o.roundTripMs }).priorityFetch;
        sum += l.timeToPlayMs + o.stallWeight * l.stallMs;
      });
      const mean = sum / Math.max(1, folds.length);
      // Only a clear gain (over 1 %) buys a larger preload.
      if (mean < bestWait * 0.99) {
        best = p;
        bestWait = mean;
        worse = 0;
      } else worse++;
    }
    return best;
  });
}

/**
 * Lowers a need curve so that its P(b) (max over points of need − b·t) is at most `target[i]` at every
 * `bandwidths[i]`: need(t) becomes min(need(t), min over i of target[i] + bandwidths[i]·t/1000), still
 * non-decreasing. Points that no longer raise need are dropped. With margins of target − P_clipped(b) the profile
 * then gives exactly `target` at the table's bandwidths.
 */
export function clipCurve(points: readonly ProfilePoint[], bandwidths: readonly number[], target: readonly number[]): ProfilePoint[] {
  const out: ProfilePoint[] = [];
  for (const p of points) {
    let need = p.needBytes;
    bandwidths.forEach((b, i) => (need = Math.min(need, target[i] + (b * p.tMs) / 1000)));
    need = Math.floor(need);
    if (need > (out.length ? out[out.length - 1].needBytes : 0)) out.push({ tMs: p.tMs, needBytes: need });
  }
  return out;
}
