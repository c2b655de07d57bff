// FastStart training (spec/engine.md §3): from a build's manifest and N session traces, a stream order (chunks
// most likely and earliest read first) and a load profile with a leave-one-out safety margin; trainImage
// writes the re-sequenced image (same chunks and files, packs in the new order, no re-chunking).
// Uses only the manifest: never chunk payloads (memory flat in build size).
import { EngineError } from '../errors.js';
import type { LoadProfile, Manifest } from '../format/types.js';
import { openImage } from '../image/reader.js';
import { openImageSource, type ImageSource } from '../image/image-source.js';
import { repackImage } from '../image/repack.js';
import type { Trace } from '../trace/trace-types.js';
import { ChunkMap, sessionAccess, type SessionAccess } from './chunk-map.js';
import { clipCurve, fitPreloads, type FitFold } from './fit.js';
import { curvePreloadBytes, quantileCurve, sessionNeedCurve, simplifyCurve, type ProfilePoint } from './profile.js';

/** Bandwidths (bytes/s) of the default margin table: 5, 10, 25, 50, 100, 250, 500, 1000 Mbit/s. */
export const DEFAULT_MARGIN_BANDWIDTHS: readonly number[] = [5, 10, 25, 50, 100, 250, 500, 1000].map((m) => m * 125_000);

export interface TrainOptions {
  /** Weight of a player's first session against 1 for later ones (default 2). */
  firstSessionWeight?: number;
  /**
   * Read chunks are ordered by an effective deadline: the time by which this (weighted) share of sessions has
   * read them (default 0.25); a chunk fewer sessions read by t gets (t + rarityDelayMs) ×
   * share / its share − rarityDelayMs.
   */
  orderShare?: number;
  /** See orderShare (default 1000 ms). */
  rarityDelayMs?: number;
  /** Urgency scale τ (ms): a chunk first read at t counts τ/(τ+t) (default 10 000). */
  urgencyMs?: number;
  /** Unread chunks within `neighbourReach` chunks of a read chunk in the same file get its score × decay^distance. */
  neighbourDecay?: number;
  neighbourReach?: number;
  /**
   * Only chunks read by at least this (weighted) share of the training sessions count in the need curves
   * (default 0.25): rarer reads are left to the launcher's priority fetch instead of inflating the preload.
   */
  profileMinShare?: number;
  /** Quantile over sessions of the need curve stored as the profile (default 0.5: the median session; the margin covers the spread). */
  profileQuantile?: number;
  /** Margin = marginZ × the leave-one-out (jackknife) spread of P(b) (default 1). */
  marginZ?: number;
  /** Bandwidths (bytes/s) of the margin table (default DEFAULT_MARGIN_BANDWIDTHS). */
  marginBandwidths?: readonly number[];
  /** Most leave-one-out folds (sessions held out in turn, evenly spread; default 16; 0 = no margin). */
  looFolds?: number;
  /** Most profile points (default 1024). */
  maxProfilePoints?: number;
  /**
   * Raise each margin to the preload with the least launcher wait (priority fetch) of the leave-one-out held-out
   * sessions (default true; needs ≥ 2 folds). See fit.ts.
   */
  fitLauncher?: boolean;
  /** Priority-fetch round trip the fit assumes, ms (default 50, as simulateSession). */
  roundTripMs?: number;
  /** Weight of stall time in play against waiting before play in the fit (default 2). */
  stallWeight?: number;
}

export interface TrainStats {
  traces: number;
  records: number;
  /** Records whose path is not a regular file of this build (e.g. a file the build no longer has). */
  unknownPathRecords: number;
  /** Records starting at or past the end of their file. */
  beyondEndRecords: number;
  chunks: number;
  /** Chunks read by at least one trace. */
  chunksRead: number;
  /** Chunks placed early because a read neighbour in the same file was. */
  chunksByNeighbour: number;
  streamBytes: number;
  looFolds: number;
  profilePoints: number;
}

export interface TrainResult {
  /** order[i] = index (in the source manifest) of the chunk stored i-th in the new stream. */
  order: number[];
  /** Profile of the new order (need in new stream bytes), with the margin table. */
  profile: LoadProfile;
  stats: TrainStats;
}

interface Resolved {
  orderShare: number;
  rarityDelayMs: number;
  profileMinShare: number;
  firstSessionWeight: number;
  urgencyMs: number;
  neighbourDecay: number;
  neighbourReach: number;
  profileQuantile: number;
  marginZ: number;
  marginBandwidths: readonly number[];
  looFolds: number;
  maxProfilePoints: number;
  fitLauncher: boolean;
  roundTripMs: number;
  stallWeight: number;
}

function resolve(o: TrainOptions): Resolved {
  const r: Resolved = {
    orderShare: o.orderShare ?? 0.25,
    rarityDelayMs: o.rarityDelayMs ?? 1000,
    profileMinShare: o.profileMinShare ?? 0.25,
    firstSessionWeight: o.firstSessionWeight ?? 2,
    urgencyMs: o.urgencyMs ?? 10_000,
    neighbourDecay: o.neighbourDecay ?? 0.25,
    neighbourReach: o.neighbourReach ?? 4,
    profileQuantile: o.profileQuantile ?? 0.5,
    marginZ: o.marginZ ?? 1,
    marginBandwidths: o.marginBandwidths ?? DEFAULT_MARGIN_BANDWIDTHS,
    looFolds: o.looFolds ?? 16,
    maxProfilePoints: o.maxProfilePoints ?? 1024,
    fitLauncher: o.fitLauncher ?? true,
    roundTripMs: o.roundTripMs ?? 50,
    stallWeight: o.stallWeight ?? 2,
  };
  const bad = (what: string): never => {
    throw new RangeError(`training option ${what}`);
  };
  if (!(r.firstSessionWeight > 0 && Number.isFinite(r.firstSessionWeight))) bad('firstSessionWeight must be > 0');
  if (!(r.urgencyMs > 0 && Number.isFinite(r.urgencyMs))) bad('urgencyMs must be > 0');
  if (!(r.neighbourDecay >= 0 && r.neighbourDecay < 1)) bad('neighbourDecay must be in [0, 1)');
  if (!Number.isSafeInteger(r.neighbourReach) || r.neighbourReach < 0 || r.neighbourReach > 1024) bad('neighbourReach must be an integer in [0, 1024]');
  if (!(r.orderShare > 0 && r.orderShare <= 1)) bad('orderShare must be in (0, 1]');
  if (!(r.profileMinShare >= 0 && r.profileMinShare <= 1)) bad('profileMinShare must be in [0, 1]');
  if (!(r.rarityDelayMs >= 0 && Number.isFinite(r.rarityDelayMs))) bad('rarityDelayMs must be ≥ 0');
  if (!(r.profileQuantile > 0 && r.profileQuantile <= 1)) bad('profileQuantile must be in (0, 1]');
  if (!(r.marginZ >= 0 && r.marginZ <= 10)) bad('marginZ must be in [0, 10]');
  if (!Number.isSafeInteger(r.looFolds) || r.looFolds < 0 || r.looFolds > 1024) bad('looFolds must be an integer in [0, 1024]');
  if (!Number.isSafeInteger(r.maxProfilePoints) || r.maxProfilePoints < 1 || r.maxProfilePoints > 1 << 20) bad('maxProfilePoints must be in [1, 2^20]');
  if (!(r.roundTripMs >= 0 && r.roundTripMs <= 60_000)) bad('roundTripMs must be in [0, 60000]');
  if (!(r.stallWeight >= 1 && r.stallWeight <= 100)) bad('stallWeight must be in [1, 100]');
  if (r.marginBandwidths.length > 64) bad('marginBandwidths: at most 64 entries');
  r.marginBandwidths.forEach((b, i) => {
    if (!Number.isSafeInteger(b) || b <= 0 || (i > 0 && b <= r.marginBandwidths[i - 1])) bad('marginBandwidths must be integers > 0, strictly ascending');
  });
  return r;
}

/** Per-chunk urgency sums: Σ over sessions of weight·τ/(τ+first access). */
function urgencySums(n: number, sessions: readonly SessionAccess[], weights: readonly number[], tau: number): Float64Array {
  const s = new Float64Array(n);
  sessions.forEach((a, k) => {
    for (let i = 0; i < a.chunks.length; i++) s[a.chunks[i]] += (weights[k] * tau) / (tau + a.firstMs[i]);
  });
  return s;
}

/** Per chunk, every session's first access (time, weight), grouped by chunk and sorted by time (CSR). */
interface AccessTable {
  start: Int32Array;
  times: Float64Array;
  weights: Float64Array;
  sessions: Int32Array;
}

function accessTable(n: number, sessions: readonly SessionAccess[], weights: readonly number[]): AccessTable {
  const start = new Int32Array(n + 1);
  for (const a of sessions) for (const c of a.chunks) start[c + 1]++;
  for (let i = 0; i < n; i++) start[i + 1] += start[i];
  const fill = start.slice(0, n);
  const total = start[n];
  const times = new Float64Array(total);
  const ws = new Float64Array(total);
  const ss = new Int32Array(total);
  sessions.forEach((a, k) => {
    for (let i = 0; i < a.chunks.length; i++) {
      const j = fill[a.chunks[i]]++;
      times[j] = a.firstMs[i];
      ws[j] = weights[k];
      ss[j] = k;
    }
  });
  for (let c = 0; c < n; c++) {
    const len = start[c + 1] - start[c];
    if (len < 2) continue;
    const idx = Array.from({ length: len }, (_, i) => start[c] + i).sort((x, y) => times[x] - times[y]);
    const t = idx.map((j) => times[j]);
    const w = idx.map((j) => ws[j]);
    const s = idx.map((j) => ss[j]);
    for (let i = 0; i < len; i++) {
      times[start[c] + i] = t[i];
      ws[start[c] + i] = w[i];
      ss[start[c] + i] = s[i];
    }
  }
  return { start, times, weights: ws, sessions: ss };
}

/**
 * A chunk's effective deadline: over its first-access times t_1 ≤ t_2 ≤ … (sessions `skip` left out), with
 * s_k the session-weight share that has read it by t_k, min over k of (t_k + D)·max(1, share / s_k) − D.
 * Read by `share` of the sessions by t: deadline t; rarer reads are pushed later in proportion (D = rarityDelayMs),
 * so a chunk few sessions read early competes with chunks many sessions read a little later. Unread: Infinity.
 */
function deadline(t: AccessTable, c: number, totalWeight: number, share: number, rarityMs: number, skip: number): number {
  let acc = 0;
  let best = Infinity;
  for (let j = t.start[c]; j < t.start[c + 1]; j++) {
    if (t.sessions[j] === skip) continue;
    acc += t.weights[j];
    const s = acc / totalWeight;
    const d = (t.times[j] + rarityMs) * Math.max(1, share / s) - rarityMs;
    if (d < best) best = d;
    if (s >= share) break;
  }
  return best;
}

function deadlines(t: AccessTable, n: number, totalWeight: number, opt: Resolved, skip: number): Float64Array {
  const out = new Float64Array(n);
  for (let c = 0; c < n; c++) out[c] = deadline(t, c, totalWeight, opt.orderShare, opt.rarityDelayMs, skip);
  return out;
}

/**
 * Stream order: read chunks by effective deadline (ties: urgency), then unread ones by their read neighbours,
 * then file order.
 */
function orderFromScores(map: ChunkMap, score: Float64Array, opt: Resolved, timeKey: Float64Array): { order: Int32Array; byNeighbour: number } {
  const n = score.length;
  const key = Float64Array.from(score);
  let byNeighbour = 0;
  if (opt.neighbourReach > 0 && opt.neighbourDecay > 0) {
    const prop = new Float64Array(n);
    const walk = (list: readonly number[], from: number, to: number, step: number): void => {
      let last = 0;
      let d = 0;
      for (let i = from; i !== to; i += step) {
        const c = list[i];
        if (score[c] > 0) {
          last = score[c];
          d = 0;
        } else if (last > 0) {
          d++;
          if (d > opt.neighbourReach) last = 0;
          else prop[c] = Math.max(prop[c], last * opt.neighbourDecay ** d);
        }
      }
    };
    for (const list of map.allFiles()) {
      walk(list, 0, list.length, 1);
      walk(list, list.length - 1, -1, -1);
    }
    for (let c = 0; c < n; c++) {
      if (score[c] === 0 && prop[c] > 0) {
        key[c] = prop[c];
        byNeighbour++;
      }
    }
  }
  const idx = Array.from({ length: n }, (_, i) => i);
  const rank = map.fileOrderRank;
  idx.sort((a, b) => {
    const ta = timeKey[a];
    const tb = timeKey[b];
    if (ta !== tb) return ta < tb ? -1 : 1;
    return key[b] - key[a] || rank[a] - rank[b];
  });
  return { order: Int32Array.from(idx), byNeighbour };
}

function positionsAndEnds(map: ChunkMap, order: Int32Array): { position: Int32Array; streamEnd: Float64Array } {
  const position = new Int32Array(order.length);
  const streamEnd = new Float64Array(order.length);
  let acc = 0;
  for (let i = 0; i < order.length; i++) {
    position[order[i]] = i;
    acc += map.storedBytes[order[i]];
    streamEnd[i] = acc;
  }
  return { position, streamEnd };
}

/** Most leave-one-out folds replayed by the launcher fit. */
const FIT_FOLDS = 8;

interface LooInput {
  manifest: Manifest;
  map: ChunkMap;
  sessions: readonly SessionAccess[];
  weights: readonly number[];
  totalWeight: number;
  sums: Float64Array;
  table: AccessTable;
  mask: (leaveOut: number) => Uint8Array;
  opt: Resolved;
  /** The profile's need curve. */
  points: readonly ProfilePoint[];
  folds: number;
  held: (k: number) => Trace;
  streamBytes: number;
}

/**
 * The margin table. Leave-one-out (jackknife): retrain without session k and recompute P(b); the spread of those
 * estimates around their mean says how much P(b) moves with the sessions trained on: margin(b) = marginZ × that
 * spread. With fitLauncher, each margin is then raised to the preload with the least mean launcher wait of the
 * held-out sessions against their folds' orders (fit.ts).
 */
function looMargins(x: LooInput): Required<LoadProfile> {
  const { opt, sessions, weights, map } = x;
  const n = x.sums.length;
  const estimates: number[][] = opt.marginBandwidths.map(() => []);
  const fitFolds: FitFold[] = [];
  for (let f = 0; f < x.folds; f++) {
    const k = Math.floor((f * sessions.length) / x.folds);
    const held = sessions[k];
    const s = Float64Array.from(x.sums);
    for (let i = 0; i < held.chunks.length; i++) s[held.chunks[i]] -= (weights[k] * opt.urgencyMs) / (opt.urgencyMs + held.firstMs[i]);
    for (let i = 0; i < held.chunks.length; i++) if (s[held.chunks[i]] < 1e-12) s[held.chunks[i]] = 0;
    const tk = deadlines(x.table, n, x.totalWeight - weights[k], opt, k);
    const fo = orderFromScores(map, s, opt, tk).order;
    const pe = positionsAndEnds(map, fo);
    const foldInclude = x.mask(k);
    const others: ProfilePoint[][] = [];
    const ow: number[] = [];
    sessions.forEach((a, j) => {
      if (j === k) return;
      others.push(sessionNeedCurve(a.chunks, a.firstMs, pe.position, pe.streamEnd, foldInclude));
      ow.push(weights[j]);
    });
    const foldCurve = quantileCurve(others, ow, opt.profileQuantile);
    opt.marginBandwidths.forEach((b, bi) => estimates[bi].push(curvePreloadBytes(foldCurve, b)));
    // At most FIT_FOLDS of the folds are replayed for the fit (each costs a simulation per candidate and bandwidth).
    if (opt.fitLauncher && (f * FIT_FOLDS) % x.folds < FIT_FOLDS) fitFolds.push({ order: fo, held: x.held(k) });
  }
  const margins = opt.marginBandwidths.map((b, bi) => {
    const e = estimates[bi];
    const mean = e.reduce((a, v) => a + v, 0) / e.length;
    const spread = Math.sqrt(((sessions.length - 1) / e.length) * e.reduce((a, v) => a + (v - mean) ** 2, 0));
    return { bytesPerSecond: b, marginBytes: Math.ceil(opt.marginZ * spread) };
  });
  if (fitFolds.length >= 2) {
    // The fitted preload may be lower than the curve's: clip the curve to it, then the margins make it exact.
    const curve = opt.marginBandwidths.map((b) => curvePreloadBytes(x.points, b));
    const floor = curve.map((c, bi) => c + margins[bi].marginBytes);
    const best = fitPreloads(x.manifest, fitFolds, { bandwidths: opt.marginBandwidths, floor, streamBytes: x.streamBytes, roundTripMs: opt.roundTripMs, stallWeight: opt.stallWeight });
    const clipped = clipCurve(x.points, opt.marginBandwidths, best);
    best.forEach((p, bi) => (margins[bi].marginBytes = Math.max(0, Math.ceil(p - curvePreloadBytes(clipped, opt.marginBandwidths[bi])))));
    return { points: clipped, margins };
  }
  return { points: [...x.points], margins };
}

/**
 * Trains a stream order and load profile for `manifest` from session traces (any build of the app: reads are
 * matched by path and offset; records of paths the build lacks or past a file's end are counted, not used).
 * Errors: EngineError 'faststart-no-traces' (zero traces), 'faststart-no-usable-records' (no trace reads
 * any chunk of this build), 'faststart-invalid-trace' (a record with a non-integer or negative time, offset or
 * length, or a zero length); RangeError for bad options. Records out of time order are sorted (stable).
 */
export function trainStreamOrder(manifest: Manifest, traces: readonly Trace[], options: TrainOptions = {}): TrainResult {
  const opt = resolve(options);
  if (traces.length === 0) throw new EngineError('faststart-no-traces', 'training needs at least one trace');
  traces.forEach((t, k) => {
    for (const r of t.records) {
      if (!Number.isSafeInteger(r.tMs) || r.tMs < 0 || !Number.isSafeInteger(r.offsetBytes) || r.offsetBytes < 0 || !Number.isSafeInteger(r.lengthBytes) || r.lengthBytes < 1) {
        throw new EngineError('faststart-invalid-trace', `trace ${k}: a record has an invalid time, offset or length`);
      }
    }
  });
  const map = new ChunkMap(manifest);
  const n = manifest.chunks.length;
  // Decoded traces are in time order; in-memory ones may not be (a stable sort keeps equal times in order).
  const inOrder = traces.map((t) => (t.records.every((r, i) => i === 0 || t.records[i - 1].tMs <= r.tMs) ? t.records : [...t.records].sort((a, b) => a.tMs - b.tMs)));
  const sessions = inOrder.map((records) => sessionAccess(map, records));
  const weights = traces.map((t) => (t.header.firstSession ? opt.firstSessionWeight : 1));
  const usable = sessions.filter((s) => s.chunks.length > 0).length;
  if (usable === 0) throw new EngineError('faststart-no-usable-records', 'no trace reads any chunk of this build (wrong app or build?)');

  const sums = urgencySums(n, sessions, weights, opt.urgencyMs);
  const table = accessTable(n, sessions, weights);
  const totalWeight = weights.reduce((a, b) => a + b, 0);
  const timeKey = deadlines(table, n, totalWeight, opt, -1);
  const { order, byNeighbour } = orderFromScores(map, sums, opt, timeKey);
  const { position, streamEnd } = positionsAndEnds(map, order);
  const readWeight = new Float64Array(n);
  sessions.forEach((a, k) => {
    for (const c of a.chunks) readWeight[c] += weights[k];
  });
  const mask = (leaveOut: number): Uint8Array => {
    const m = new Uint8Array(n);
    const total = totalWeight - (leaveOut >= 0 ? weights[leaveOut] : 0);
    for (let c = 0; c < n; c++) m[c] = readWeight[c] >= opt.profileMinShare * total - 1e-9 ? 1 : 0;
    if (leaveOut >= 0) {
      for (const c of sessions[leaveOut].chunks) m[c] = readWeight[c] - weights[leaveOut] >= opt.profileMinShare * total - 1e-9 && readWeight[c] - weights[leaveOut] > 0 ? 1 : 0;
    }
    return m;
  };
  const include = mask(-1);
  const curves = sessions.map((s) => sessionNeedCurve(s.chunks, s.firstMs, position, streamEnd, include));
  const points = simplifyCurve(quantileCurve(curves, weights, opt.profileQuantile), opt.maxProfilePoints);
  const profile: LoadProfile = { points };

  const folds = Math.min(opt.looFolds, traces.length >= 2 ? traces.length : 0);
  if (folds > 0 && opt.marginBandwidths.length > 0) {
    const fitted = looMargins({ manifest, map, sessions, weights, totalWeight, sums, table, mask, opt, points, folds, held: (k) => ({ header: traces[k].header, records: inOrder[k] }), streamBytes: streamEnd.length ? streamEnd[streamEnd.length - 1] : 0 });
    profile.points = fitted.points;
    profile.margins = fitted.margins;
  }

  const chunksRead = sums.reduce((a, v) => a + (v > 0 ? 1 : 0), 0);
  return {
    order: Array.from(order),
    profile,
    stats: {
      traces: traces.length,
      records: sessions.reduce((a, s) => a + s.records, 0),
      unknownPathRecords: sessions.reduce((a, s) => a + s.unknownPath, 0),
      beyondEndRecords: sessions.reduce((a, s) => a + s.beyondEnd, 0),
      chunks: n,
      chunksRead,
      chunksByNeighbour: byNeighbour,
      streamBytes: streamEnd.length ? streamEnd[streamEnd.length - 1] : 0,
      looFolds: profile.margins ? folds : 0,
      profilePoints: profile.points.length,
    },
  };
}

export interface TrainImageOptions extends TrainOptions {
  /** The image to re-sequence (folder, URL or an open source; an ImageSource passed in is closed). */
  source: string | URL | ImageSource;
  traces: readonly Trace[];
  /** Output folder of the new image (must not exist or be empty). */
  outDir: string;
  packSizeBytes?: number;
}

export interface TrainImageResult extends TrainResult {
  manifest: Manifest;
  manifestName: string;
}

/**
 * Trains on `traces` and writes the re-sequenced image of the same build (same chunks and files, packs in the
 * trained order, the profile in its manifest). Errors: those of trainStreamOrder and repackImage.
 */
export async function trainImage(opts: TrainImageOptions): Promise<TrainImageResult> {
  const source = typeof opts.source === 'string' || opts.source instanceof URL ? openImageSource(opts.source) : opts.source;
  let trained: TrainResult;
  try {
    const { manifest } = await openImage(source);
    trained = trainStreamOrder(manifest, opts.traces, opts);
  } catch (err) {
    await source.close();
    throw err;
  }
  const written = await repackImage({ source, outDir: opts.outDir, order: trained.order, profile: trained.profile, ...(opts.packSizeBytes ? { packSizeBytes: opts.packSizeBytes } : {}) });
  return { ...trained, ...written };
}

export interface MappedTraces {
  /** The traces with only the records that land on the build's files (clipped to the file end). */
  traces: Trace[];
  keptRecords: number;
  unknownPathRecords: number;
  beyondEndRecords: number;
}

/**
 * Carries traces of an older build over to `manifest` (a new build of the same app): records are matched by
 * path and offset; reads of paths the new build lacks or starting past the new file's end are dropped, reads
 * running past the end are clipped. The result feeds trainStreamOrder / trainImage for the new build's first
 * image. Never throws for lying traces; the counts say what was dropped.
 */
export function mapTracesToManifest(traces: readonly Trace[], manifest: Manifest): MappedTraces {
  const map = new ChunkMap(manifest);
  const sizes = new Map<string, number>();
  const byPath = new Map(manifest.files.map((f) => [f.path, f]));
  for (const f of manifest.files) {
    const t = f.type === 'hardlink' ? byPath.get(f.linkTarget) : f;
    if (t && t.type === 'file') sizes.set(f.path, t.sizeBytes);
  }
  let kept = 0;
  let unknownPath = 0;
  let beyondEnd = 0;
  const out = traces.map((t) => ({
    header: { ...t.header },
    records: t.records.flatMap((r) => {
      const size = sizes.get(r.path);
      if (size === undefined || map.fileChunks(r.path).length === 0) {
        unknownPath++;
        return [];
      }
      if (r.offsetBytes >= size) {
        beyondEnd++;
        return [];
      }
      kept++;
      return [{ ...r, lengthBytes: Math.min(r.lengthBytes, size - r.offsetBytes) }];
    }),
  }));
  return { traces: out, keptRecords: kept, unknownPathRecords: unknownPath, beyondEndRecords: beyondEnd };
}
