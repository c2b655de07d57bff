// FastStart simulator (spec/engine.md §3 "Measure it"): replays one session against an image's stream order
// at a bandwidth. Time model: the launcher is started at t = 0; its setup (start-up, the round trips for
// release.json, image.json and the manifest, the manifest's bytes at b; 0 unless modelled) ends at S; the
// download runs at b from S; play starts once the preload is present; a read at session time t happens at wall
// time start + t + stalls so far and needs all its chunks.
import type { Manifest } from '../format/types.js';
import type { Trace } from '../trace/trace-types.js';
import { ChunkMap, sessionAccess, type SessionAccess } from './chunk-map.js';
import { curvePreloadBytes, preloadBytes as profilePreload, sessionNeedCurve } from './profile.js';

/** What a launcher does before its first chunk read (see setupMs). */
export interface SetupModel {
  /** Round trips one after the other (default 2: release.json, then image.json together with the manifest). */
  roundTrips?: number;
  /** The manifest's stored size: it arrives at b before the download starts (default 0). */
  manifestBytes?: number;
  /** Fixed start-up before the first request (process start, module loading), ms (default 0). */
  startupMs?: number;
}

/** Default setup round trips: release.json, then image.json and the manifest at once (the launcher's openInstall). */
export const SETUP_ROUND_TRIPS = 2;

/**
 * The setup's duration in ms: startupMs + roundTrips × roundTripMs + manifestBytes at b. Throws RangeError for a
 * field that is not a finite number ≥ 0 (roundTrips: an integer).
 */
export function setupMs(model: SetupModel, bytesPerSecond: number, roundTripMs: number): number {
  const k = model.roundTrips ?? SETUP_ROUND_TRIPS;
  const bytes = model.manifestBytes ?? 0;
  const start = model.startupMs ?? 0;
  if (!Number.isSafeInteger(k) || k < 0) throw new RangeError('setup.roundTrips must be an integer ≥ 0');
  if (!(Number.isFinite(bytes) && bytes >= 0) || !(Number.isFinite(start) && start >= 0)) throw new RangeError('setup.manifestBytes and setup.startupMs must be ≥ 0');
  if (!(Number.isFinite(bytesPerSecond) && bytesPerSecond > 0) || !(Number.isFinite(roundTripMs) && roundTripMs >= 0)) throw new RangeError('bytesPerSecond must be > 0 and roundTripMs ≥ 0');
  return start + k * roundTripMs + (bytes / bytesPerSecond) * 1000;
}

export interface SimulateOptions {
  bytesPerSecond: number;
  /**
   * Model the launcher's setup before its first chunk read (see setupMs): every time to play and wait then counts
   * from the launcher's start. Without it the download starts at t = 0 (setupMs 0).
   */
  setup?: SetupModel;
  /** Preload the launcher waits for (default: the image profile's P(b); 0 without a profile). */
  preloadBytes?: number;
  /** Round trip of one priority fetch, ms (default 50). */
  roundTripMs?: number;
  /**
   * A priority fetch also takes the chunks that follow the missing one in stream order (not yet downloaded or
   * fetched) up to this many stored bytes in all, as the launcher's ChunkStream does (its URGENT_GROUP_BYTES;
   * default 256 KiB; 0 = the missing chunks only).
   */
  urgentGroupBytes?: number;
  /**
   * Read-ahead in file order, as the launcher's ChunkStream does: a priority fetch also takes the chunks that
   * follow the read in its file (not yet downloaded or fetched), up to this many stored bytes
   * (default FILE_READ_AHEAD_BYTES; 0 = none).
   */
  fileReadAheadBytes?: number;
}

export interface LaunchOutcome {
  preloadBytes: number;
  /** When play starts (preload present), ms from the launcher's start: setupMs + downloadMs. */
  timeToPlayMs: number;
  /** When play starts counted from the first chunk read (the figure without the setup). */
  downloadMs: number;
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
  /** The modelled setup before the first chunk read, ms (0 without SimulateOptions.setup); in every timeToPlayMs. */
  setupMs: number;
  /** The plain full download: setup + size / b. */
  fullDownload: { timeToPlayMs: number; downloadMs: number };
  /** The best order for this very session: the chunks it reads, in the order it reads them, no stalls. */
  oracle: { preloadBytes: number; timeToPlayMs: number; downloadMs: number };
  /** The preload that avoids every stall with this image's order (stream alone). */
  noStallPreloadBytes: number;
  /** Stream alone, with `preloadBytes`: a missing chunk waits for the stream. */
  stream: LaunchOutcome;
  /**
   * Launcher with priority fetch: a read of missing chunks waits for whichever is sooner — the stream, or
   * fetching them at once (one round trip + their size at b; the stream keeps flowing during the round trip
   * and pauses while the fetched bytes arrive; it then skips them). A fetch also takes the launcher's group
   * (urgentGroupBytes) and any file read-ahead, which arrive after the needed bytes.
   */
  priorityFetch: LaunchOutcome & { fetches: number; fetchedBytes: number };
}

/** What the launcher's ChunkStream fetches at most per priority read (client URGENT_GROUP_BYTES). */
export const URGENT_GROUP_BYTES = 256 * 1024;

/**
 * After a read that missed, the launcher also fetches this many stored bytes of the same file after the read
 * (they arrive after the needed bytes): a game that reads a file in pieces misses once, not once per piece.
 */
export const FILE_READ_AHEAD_BYTES = 2 * 1024 * 1024;

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

interface PriorityInput {
  acc: SessionAccess;
  stored: Float64Array;
  total: number;
  preload: number;
  start: number;
  b: number;
  rtt: number;
  group: number;
  /** Per placed read, the file read-ahead chunks (empty without file read-ahead). */
  readAfter: number[][];
}

/**
 * The launcher with priority fetch. A read of missing chunks waits for whichever is sooner: the stream, or one
 * fetch of them (round trip + their bytes at b). A fetch also takes the launcher's group (the stream-order chunks
 * after each missing one, up to `group` bytes) and any file read-ahead; those arrive after the needed bytes
 * (the read does not wait for them) and a later read of one waits for its arrival. The stream flows during the
 * round trip, pauses while fetched bytes arrive, and then skips them.
 */
function priorityFetchLaunch(x: PriorityInput): SessionSimulation['priorityFetch'] {
  const { acc, stored, b, rtt } = x;
  const n = stored.length;
  const ms = (bytes: number): number => (bytes / b) * 1000;
  const fw = new Fenwick(stored);
  const arrival = new Float64Array(n).fill(-1);
  let remaining = x.total;
  let sPos = x.preload;
  let sTime = x.start;
  const downloaded = (w: number): number => Math.min(remaining, sPos + (Math.max(0, w - sTime) * b) / 1000);
  let stall = 0;
  let stalls = 0;
  let fetches = 0;
  let fetchedBytes = 0;
  const missing: number[] = [];
  for (let r = 0; r < acc.readTimes.length; r++) {
    const wall = x.start + acc.readTimes[r] + stall;
    const have = downloaded(wall);
    missing.length = 0;
    let need = 0;
    let size = 0;
    let fetchedWait = 0;
    for (let j = acc.readStart[r]; j < acc.readStart[r + 1]; j++) {
      const c = acc.readChunks[j];
      if (arrival[c] >= 0) {
        fetchedWait = Math.max(fetchedWait, arrival[c] - wall);
        continue;
      }
      const end = fw.prefix(c);
      if (end > have + 1e-6 && !missing.includes(c)) {
        missing.push(c);
        need = Math.max(need, end);
        size += stored[c];
      }
    }
    if (missing.length === 0) {
      if (fetchedWait > 1e-9) {
        stall += fetchedWait;
        stalls++;
      }
      continue;
    }
    const viaStream = sTime + ms(need - sPos) - wall;
    const viaFetch = rtt + ms(size);
    stalls++;
    if (viaStream <= viaFetch) {
      stall += Math.max(0, viaStream, fetchedWait);
      continue;
    }
    const extra = (c: number): boolean => arrival[c] < 0 && fw.prefix(c) > have + 1e-6 && !missing.includes(c);
    const wanted = missing.length;
    for (let i = 0; i < wanted; i++) {
      let groupBytes = stored[missing[i]];
      for (let c = missing[i] + 1; c < n && extra(c) && groupBytes + stored[c] <= x.group; c++) {
        missing.push(c);
        groupBytes += stored[c];
      }
    }
    for (const c of x.readAfter[r] ?? []) if (extra(c)) missing.push(c);
    // The round trip overlaps the stream; the fetched bytes then take the link (stream paused), needed ones first.
    sPos = downloaded(wall + rtt);
    let t = wall + rtt;
    for (const c of missing) {
      t += ms(stored[c]);
      arrival[c] = t;
      fw.add(c, -stored[c]);
      remaining -= stored[c];
      fetchedBytes += stored[c];
    }
    sTime = t;
    sPos = Math.min(sPos, remaining);
    fetches++;
    stall += Math.max(viaFetch, fetchedWait);
  }
  return { preloadBytes: x.preload, timeToPlayMs: x.start, downloadMs: x.start, stalls, stallMs: stall, waitMs: x.start + stall, fetches, fetchedBytes };
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
  const group = opts.urgentGroupBytes ?? URGENT_GROUP_BYTES;
  const fileAhead = opts.fileReadAheadBytes ?? FILE_READ_AHEAD_BYTES;
  if (!(group >= 0 && Number.isFinite(group)) || !(fileAhead >= 0 && Number.isFinite(fileAhead))) throw new RangeError('urgentGroupBytes and fileReadAheadBytes must be ≥ 0');
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
  // With file read-ahead: per placed read (as in acc.readTimes), the chunks after it in its file.
  const readAfter: number[][] = [];
  if (fileAhead > 0) for (const rec of trace.records) if (map.forEachChunk(rec, () => undefined) === null) readAfter.push(map.chunksAfter(rec, fileAhead));

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
  const stream: LaunchOutcome = { preloadBytes: preload, timeToPlayMs: start, downloadMs: start, stalls, stallMs: stall, waitMs: start + stall };

  const priorityFetch = priorityFetchLaunch({ acc, stored, total, preload, start, b, rtt, group, readAfter });

  // The setup only moves the whole download later: stalls do not change, every time to play and wait grows by it.
  const setup = opts.setup ? setupMs(opts.setup, b, rtt) : 0;
  const later = <T extends { timeToPlayMs: number; waitMs: number }>(o: T): T => ({ ...o, timeToPlayMs: o.timeToPlayMs + setup, waitMs: o.waitMs + setup });
  const oracleMs = ms(Math.ceil(oracleP));
  return {
    bytesPerSecond: b,
    streamBytes: total,
    unmappedRecords: acc.unknownPath + acc.beyondEnd,
    setupMs: setup,
    fullDownload: { timeToPlayMs: setup + ms(total), downloadMs: ms(total) },
    oracle: { preloadBytes: Math.ceil(oracleP), timeToPlayMs: setup + oracleMs, downloadMs: oracleMs },
    noStallPreloadBytes: noStall,
    stream: later(stream),
    priorityFetch: later(priorityFetch),
  };
}
