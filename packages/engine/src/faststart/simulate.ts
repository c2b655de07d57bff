// FastStart simulator (spec/engine.md §3 "Measure it"): replays one session against an image's stream order
// at a bandwidth. Time model: the download runs at b from t = 0; play starts once the preload is present;
// a read at session time t happens at wall time start + t + stalls so far and needs all its chunks.
import type { Manifest } from '../format/types.js';
import type { Trace } from '../trace/trace-types.js';
import { ChunkMap, sessionAccess } from './chunk-map.js';
import { curvePreloadBytes, preloadBytes as profilePreload, sessionNeedCurve } from './profile.js';

export interface SimulateOptions {
  bytesPerSecond: number;
  /** Preload the launcher waits for (default: the image profile's P(b); 0 without a profile). */
  preloadBytes?: number;
  /** Round trip of one priority fetch, ms (default 50). */
  roundTripMs?: number;
}

export interface LaunchOutcome {
  preloadBytes: number;
  /** When play starts (preload present), ms. */
  timeToPlayMs: number;
  stalls: number;
  stallMs: number;
  /** timeToPlayMs + stallMs: the player's total wait. */
  waitMs: number;
}

export interface SessionSimulation {
  bytesPerSecond: number;
  streamBytes: number;
  /** Records that matched no chunk (path not in the build, or past the file end). */
  unmappedRecords: number;
  /** The plain full download: size / b. */
  fullDownload: { timeToPlayMs: number };
  /** The best order for this very session: the chunks it reads, in the order it reads them, no stalls. */
  oracle: { preloadBytes: number; timeToPlayMs: number };
  /** The preload that avoids every stall with this image's order (stream alone). */
  noStallPreloadBytes: number;
  /** Stream alone, with `preloadBytes`: a missing chunk waits for the stream. */
  stream: LaunchOutcome;
  /** Launcher with priority fetch: a missing chunk is fetched at once (round trip + size at b, stream paused). */
  priorityFetch: LaunchOutcome & { fetches: number; fetchedBytes: number };
}

/** Fenwick tree over stream positions (remaining stream bytes; fetched chunks drop out). */
class Fenwick {
  private readonly t: Float64Array;
  constructor(values: Float64Array) {
    const n = values.length;
    this.t = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) {
      const j = i + 1;
      this.t[j] += values[i];
      const k = j + (j & -j);
      if (k <= n) this.t[k] += this.t[j];
    }
  }
  add(i: number, v: number): void {
    for (let j = i + 1; j < this.t.length; j += j & -j) this.t[j] += v;
  }
  /** Sum of positions 0..i inclusive. */
  prefix(i: number): number {
    let s = 0;
    for (let j = i + 1; j > 0; j -= j & -j) s += this.t[j];
    return s;
  }
}

/**
 * Simulates one session (its records in time order) against the image whose manifest is given (its chunk
 * order is the stream order). Deterministic; never throws for lying traces (unmatched reads are counted).
 * Throws RangeError for a bandwidth or preload that is not a finite number ≥ 0 (bandwidth > 0).
 */
export function simulateSession(manifest: Manifest, trace: Trace, opts: SimulateOptions): SessionSimulation {
  const b = opts.bytesPerSecond;
  if (!Number.isFinite(b) || b <= 0) throw new RangeError('bytesPerSecond must be a finite number > 0');
  const rtt = opts.roundTripMs ?? 50;
  if (!Number.isFinite(rtt) || rtt < 0) throw new RangeError('roundTripMs must be ≥ 0');
  const map = new ChunkMap(manifest);
  const n = manifest.chunks.length;
  const stored = map.storedBytes;
  const streamEnd = new Float64Array(n);
  const identity = new Int32Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += stored[i];
    streamEnd[i] = total;
    identity[i] = i;
  }
  const P = opts.preloadBytes ?? (manifest.profile ? profilePreload(manifest.profile, b) : 0);
  if (!Number.isFinite(P) || P < 0) throw new RangeError('preloadBytes must be ≥ 0');
  const preload = Math.min(P, total);
  const ms = (bytes: number): number => (bytes / b) * 1000;
  const acc = sessionAccess(map, trace.records, true);

  // Oracle: this session's chunks, in first-access order.
  const oracleEnd = new Float64Array(acc.chunks.length);
  const oraclePos = new Int32Array(n);
  let oa = 0;
  for (let i = 0; i < acc.chunks.length; i++) {
    oa += stored[acc.chunks[i]];
    oracleEnd[i] = oa;
    oraclePos[acc.chunks[i]] = i;
  }
  const oracleP = curvePreloadBytes(sessionNeedCurve(acc.chunks, acc.firstMs, oraclePos, oracleEnd), b);
  const noStall = Math.ceil(curvePreloadBytes(sessionNeedCurve(acc.chunks, acc.firstMs, identity, streamEnd), b));

  const start = ms(preload);
  const reads = acc.readTimes.length;

  // Stream alone.
  let stall = 0;
  let stalls = 0;
  for (let r = 0; r < reads; r++) {
    const wall = start + acc.readTimes[r] + stall;
    let need = 0;
    for (let j = acc.readStart[r]; j < acc.readStart[r + 1]; j++) need = Math.max(need, streamEnd[acc.readChunks[j]]);
    const arrive = ms(need);
    if (arrive > wall + 1e-9) {
      stall += arrive - wall;
      stalls++;
    }
  }
  const stream: LaunchOutcome = { preloadBytes: preload, timeToPlayMs: start, stalls, stallMs: stall, waitMs: start + stall };

  // Launcher with priority fetch.
  const fw = new Fenwick(stored);
  const fetched = new Uint8Array(n);
  let remaining = total;
  let sPos = preload;
  let sTime = start;
  const downloaded = (w: number): number => Math.min(remaining, sPos + (Math.max(0, w - sTime) * b) / 1000);
  let pStall = 0;
  let pStalls = 0;
  let fetches = 0;
  let fetchedBytes = 0;
  const missing: number[] = [];
  for (let r = 0; r < reads; r++) {
    const wall = start + acc.readTimes[r] + pStall;
    const have = downloaded(wall);
    missing.length = 0;
    let need = 0;
    let size = 0;
    for (let j = acc.readStart[r]; j < acc.readStart[r + 1]; j++) {
      const c = acc.readChunks[j];
      if (fetched[c]) continue;
      const end = fw.prefix(c);
      if (end > have + 1e-6 && !missing.includes(c)) {
        missing.push(c);
        need = Math.max(need, end);
        size += stored[c];
      }
    }
    if (missing.length === 0) continue;
    const viaStream = sTime + ms(need - sPos) - wall;
    const viaFetch = rtt + ms(size);
    pStalls++;
    if (viaStream <= viaFetch) {
      pStall += Math.max(0, viaStream);
    } else {
      sPos = have;
      sTime = wall + viaFetch;
      for (const c of missing) {
        fetched[c] = 1;
        fw.add(c, -stored[c]);
        remaining -= stored[c];
      }
      sPos = Math.min(sPos, remaining);
      fetches++;
      fetchedBytes += size;
      pStall += viaFetch;
    }
  }

  return {
    bytesPerSecond: b,
    streamBytes: total,
    unmappedRecords: acc.unknownPath + acc.beyondEnd,
    fullDownload: { timeToPlayMs: ms(total) },
    oracle: { preloadBytes: Math.ceil(oracleP), timeToPlayMs: ms(Math.ceil(oracleP)) },
    noStallPreloadBytes: noStall,
    stream,
    priorityFetch: { preloadBytes: preload, timeToPlayMs: start, stalls: pStalls, stallMs: pStall, waitMs: start + pStall, fetches, fetchedBytes },
  };
}
