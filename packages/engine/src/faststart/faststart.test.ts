import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../errors.js';
import { DEFAULT_CHUNKING } from '../format/constants.js';
import { Codec, type Manifest } from '../format/types.js';
import { buildImage } from '../image/build.js';
import { openImage } from '../image/reader.js';
import { openImageSource } from '../image/image-source.js';
import { verifyImage } from '../image/verify.js';
import { makeTempDir, removeDir } from '../image/test-support/random-tree.js';
import type { Trace, TraceRecord } from '../trace/trace-types.js';
import { mapTracesToManifest, marginBytes, preloadBytes, setupMs, simulateSession, trainImage, trainStreamOrder } from './index.js';

/** A manifest (no payloads) with files of `sizes[i]` chunks each, every chunk `chunkBytes` raw and stored. */
function layout(files: Record<string, number>, chunkBytes = 1000): Manifest {
  const chunks: Manifest['chunks'] = [];
  const entries: Manifest['files'] = [];
  for (const [path, n] of Object.entries(files)) {
    const list: number[] = [];
    for (let i = 0; i < n; i++) {
      const hash = new Uint8Array(32);
      new DataView(hash.buffer).setUint32(0, chunks.length);
      list.push(chunks.length);
      chunks.push({ hash, rawSizeBytes: chunkBytes, storedSizeBytes: chunkBytes, codec: Codec.Raw, pack: 0, offset: 8 + chunks.length * chunkBytes });
    }
    entries.push({ path, type: 'file', mode: 0o644, sizeBytes: n * chunkBytes, sha256: new Uint8Array(32), linkTarget: '', chunks: list });
  }
  return { formatVersion: 1, chunking: { ...DEFAULT_CHUNKING }, files: entries, chunks, packs: [{ name: 'p.rkp', sizeBytes: 8 + chunks.length * chunkBytes }] };
}

function trace(records: Array<[number, string, number, number]>, firstSession = false, id = 's'): Trace {
  return {
    header: { orgName: 'o', appName: 'a', buildId: 1, dxfName: '', sessionId: id, firstSession, startTimeUnixSeconds: 0 },
    records: records.map(([tMs, path, offsetBytes, lengthBytes]): TraceRecord => ({ tMs, path, offsetBytes, lengthBytes })),
  };
}

function engineCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof EngineError) return err.code;
    throw err;
  }
  return undefined;
}

describe('preloadBytes', () => {
  it('is max(need − b·t) plus the interpolated margin', () => {
    const p = { points: [{ tMs: 0, needBytes: 100 }, { tMs: 1000, needBytes: 1100 }, { tMs: 3000, needBytes: 1200 }] };
    expect(preloadBytes(p, 500)).toBe(600); // 1100 − 500·1
    expect(preloadBytes(p, 2000)).toBe(100); // t=0 point dominates
    expect(preloadBytes({ points: [] }, 10)).toBe(0);
    const m = { ...p, margins: [{ bytesPerSecond: 100, marginBytes: 10 }, { bytesPerSecond: 10_000, marginBytes: 30 }] };
    expect(marginBytes(m, 50)).toBe(10);
    expect(marginBytes(m, 1000)).toBeCloseTo(20, 9); // half way in log(b)
    expect(marginBytes(m, 1e9)).toBe(30);
    expect(preloadBytes(m, 1000)).toBe(120); // max(100, 1100 − 1000) + 20
    expect(preloadBytes(m, 500)).toBe(617); // 600 + 10 + 20·log(5)/log(100) = 616.99, rounded up
    expect(() => preloadBytes(p, 0)).toThrow(RangeError);
    expect(() => preloadBytes(p, Number.NaN)).toThrow(RangeError);
  });
});

describe('trainStreamOrder', () => {
  const m = layout({ 'a.pak': 6, 'b.pak': 3, 'c.pak': 2 });
  // chunk indexes: a.pak 0..5, b.pak 6..8, c.pak 9..10.
  const s1 = trace([[0, 'b.pak', 0, 10], [100, 'a.pak', 2000, 500], [5000, 'c.pak', 1500, 10]], true, 's1');
  const s2 = trace([[0, 'b.pak', 0, 10], [200, 'a.pak', 2100, 1000]], false, 's2');

  it('orders by how likely and how early, read neighbours next, the rest in file order', () => {
    const r = trainStreamOrder(m, [s1, s2], { looFolds: 0 });
    // First sessions weigh 2 (total 3). Deadlines (time by which a 0.25 share of the session weight has read
    // them): b0 0 ms, a2 100 ms, a3 200 ms, c1 5000 ms.
    expect(r.order.slice(0, 4)).toEqual([6, 2, 3, 10]);
    // Then unread chunks by their read neighbours in the same file (urgency τ/(τ+t) summed, × 0.25^distance):
    // b1 0.75, a1 0.74, c0 0.33, a4 0.245, b2 0.19, a0 0.185, a5 0.06.
    expect(r.order).toEqual([6, 2, 3, 10, 7, 1, 9, 4, 8, 0, 5]);
    expect(r.stats.chunksByNeighbour).toBe(7);
    expect(trainStreamOrder(m, [s1, s2], { looFolds: 0, neighbourReach: 0 }).order).toEqual([6, 2, 3, 10, 0, 1, 4, 5, 7, 8, 9]);
    // With share 0.5, a3 (read by s2 only: share 1/3) gets the deadline (200 + D)·1.5 − D: 800 ms with D = 1 s,
    // still before c1 (5000 ms); with D = 10 s it is 5300 ms, after c1.
    expect(trainStreamOrder(m, [s1, s2], { looFolds: 0, orderShare: 0.5 }).order.slice(0, 4)).toEqual([6, 2, 3, 10]);
    expect(trainStreamOrder(m, [s1, s2], { looFolds: 0, orderShare: 0.5, rarityDelayMs: 10_000 }).order.slice(0, 4)).toEqual([6, 2, 10, 3]);
    expect(r.stats).toMatchObject({ traces: 2, records: 5, unknownPathRecords: 0, beyondEndRecords: 0, chunks: 11, chunksRead: 4, looFolds: 0 });
    expect(r.profile.margins).toBeUndefined();
  });

  it('profiles the need curve (quantile over sessions) in the new stream bytes', () => {
    // Stream b0 a2 a3 c1 …, 1000 bytes each. profileQuantile 1 = the upper envelope:
    // s1 needs 1000 at 0, 2000 at 100, 4000 at 5000; s2 needs 1000 at 0, 3000 at 200 (a2 and a3).
    const r = trainStreamOrder(m, [s1, s2], { looFolds: 0, profileQuantile: 1, orderShare: 0.25 });
    expect(r.profile.points).toEqual([
      { tMs: 0, needBytes: 1000 },
      { tMs: 100, needBytes: 2000 },
      { tMs: 200, needBytes: 3000 },
      { tMs: 5000, needBytes: 4000 },
    ]);
    expect(preloadBytes(r.profile, 1000)).toBe(2800); // 3000 − 1000·0.2
    // The weighted median (s1 weighs 2 of 3; same stream): s1's curve.
    expect(trainStreamOrder(m, [s1, s2], { looFolds: 0, profileQuantile: 0.5 }).profile.points).toEqual([
      { tMs: 0, needBytes: 1000 },
      { tMs: 100, needBytes: 2000 },
      { tMs: 5000, needBytes: 4000 },
    ]);
  });

  it('leaves chunks that few sessions read out of the need curves (priority fetch gets them)', () => {
    const t1 = trace([[0, 'b.pak', 0, 10], [100, 'a.pak', 2000, 10]], true, 't1');
    const t2 = trace([[0, 'b.pak', 0, 10], [100, 'a.pak', 2000, 10]], false, 't2');
    const t3 = trace([[0, 'b.pak', 0, 10], [50, 'c.pak', 1500, 10]], false, 't3');
    // Weights 2, 1, 1. Order: b0 (0 ms), c1 (t3 only: share 1/4, deadline 50 ms), a2 (100 ms).
    const all = trainStreamOrder(m, [t1, t2, t3], { looFolds: 0, profileQuantile: 1, profileMinShare: 0 });
    expect(all.order.slice(0, 3)).toEqual([6, 10, 2]);
    expect(all.profile.points).toEqual([
      { tMs: 0, needBytes: 1000 },
      { tMs: 50, needBytes: 2000 },
      { tMs: 100, needBytes: 3000 },
    ]);
    // With a minimum share of 0.5, c1 (share 0.25) no longer counts: t3 needs only b0.
    const common = trainStreamOrder(m, [t1, t2, t3], { looFolds: 0, profileQuantile: 1, profileMinShare: 0.5 });
    expect(common.profile.points).toEqual([
      { tMs: 0, needBytes: 1000 },
      { tMs: 100, needBytes: 3000 },
    ]);
  });

  it('adds a leave-one-out margin table when there are two or more traces', () => {
    const r = trainStreamOrder(m, [s1, s2], { marginBandwidths: [1000, 100_000] });
    expect(r.stats.looFolds).toBe(2);
    expect(r.profile.margins?.map((e) => e.bytesPerSecond)).toEqual([1000, 100_000]);
    for (const e of r.profile.margins ?? []) expect(e.marginBytes).toBeGreaterThanOrEqual(0);
    expect(trainStreamOrder(m, [s1]).profile.margins).toBeUndefined();
    // Identical sessions: every leave-one-out estimate of P(b) is the same, so the jackknife spread is 0.
    const same = trainStreamOrder(m, [s1, { ...s1 }, { ...s1 }], { marginBandwidths: [1000] });
    expect(same.profile.margins).toEqual([{ bytesPerSecond: 1000, marginBytes: 0 }]);
    // Different sessions: P(b) moves with the session left out, so a positive margin at a low bandwidth.
    const s3 = trace([[0, 'a.pak', 5000, 1000], [10, 'c.pak', 0, 10]], false, 's3');
    expect(trainStreamOrder(m, [s1, s2, s3], { marginBandwidths: [1000], fitLauncher: false }).profile.margins![0].marginBytes).toBeGreaterThan(0);
  });

  it('refuses zero traces and traces that do not match the build; counts lying records', () => {
    expect(engineCode(() => trainStreamOrder(m, []))).toBe('faststart-no-traces');
    expect(engineCode(() => trainStreamOrder(m, [trace([[0, 'other.pak', 0, 10]])]))).toBe('faststart-no-usable-records');
    const liar = trace([[0, 'x/../y', 0, 1], [1, 'a.pak', 2 ** 52, 10], [2, 'nope', 0, 1], [3, 'a.pak', 0, 2 ** 52], [1, 'b.pak', 0, 1]]);
    const r = trainStreamOrder(m, [liar]);
    expect(r.stats).toMatchObject({ unknownPathRecords: 2, beyondEndRecords: 1, chunksRead: 7 });
    for (const bad of [[Number.NaN, 'a.pak', 0, 1], [-1, 'a.pak', 0, 1], [0, 'a.pak', -5, 1], [0, 'a.pak', 0, 0], [0, 'a.pak', 0.5, 1]] as Array<[number, string, number, number]>) {
      expect(engineCode(() => trainStreamOrder(m, [s1, trace([bad])]))).toBe('faststart-invalid-trace');
    }
    // Times going back (an in-memory trace): sorted before use, same result as the sorted trace.
    const back = trace([[200, 'a.pak', 2100, 1000], [0, 'b.pak', 0, 10]]);
    expect(trainStreamOrder(m, [s1, back]).order).toEqual(trainStreamOrder(m, [s1, s2]).order);
    expect(() => trainStreamOrder(m, [s1], { profileQuantile: 2 })).toThrow(RangeError);
    expect(() => trainStreamOrder(m, [s1], { marginBandwidths: [10, 5] })).toThrow(RangeError);
    expect(() => trainStreamOrder(m, [s1], { stallWeight: 0.5 })).toThrow(RangeError);
    expect(() => trainStreamOrder(m, [s1], { roundTripMs: -1 })).toThrow(RangeError);
  });

  it('mapTracesToManifest carries an old build’s traces onto a new build by path and offset', () => {
    const newBuild = layout({ 'a.pak': 2, 'c.pak': 2 });
    const old = trace([[0, 'a.pak', 500, 5000], [1, 'b.pak', 0, 10], [2, 'a.pak', 2500, 1], [3, 'c.pak', 0, 10]]);
    const r = mapTracesToManifest([old], newBuild);
    expect(r).toMatchObject({ keptRecords: 2, unknownPathRecords: 1, beyondEndRecords: 1 });
    expect(r.traces[0].records).toEqual([
      { tMs: 0, path: 'a.pak', offsetBytes: 500, lengthBytes: 1500 },
      { tMs: 3, path: 'c.pak', offsetBytes: 0, lengthBytes: 10 },
    ]);
    expect(trainStreamOrder(newBuild, r.traces).order.slice(0, 3)).toEqual([0, 1, 2]);
  });
});

describe('simulateSession (hand-computed)', () => {
  // One file of 4 chunks of 1000 bytes; b = 1000 B/s, so a chunk takes 1000 ms.
  const m = layout({ f: 4 });
  const s = trace([[0, 'f', 0, 10], [1000, 'f', 3000, 10]]);

  it('stream alone and with priority fetch, next to the full download and the oracle', () => {
    const r = simulateSession(m, s, { bytesPerSecond: 1000, preloadBytes: 1000, roundTripMs: 50 });
    expect(r.setupMs).toBe(0);
    expect(r.fullDownload).toEqual({ timeToPlayMs: 4000, downloadMs: 4000 });
    expect(r.oracle).toEqual({ preloadBytes: 1000, timeToPlayMs: 1000, downloadMs: 1000 }); // chunks 0, 3: need 1000 at 0, 2000 at 1 s
    expect(r.noStallPreloadBytes).toBe(3000); // need 4000 at 1 s
    // Stream: play at 1 s; the read at t=1 s (wall 2 s) needs chunk 3, streamed by 4 s: one stall of 2 s.
    expect(r.stream).toEqual({ preloadBytes: 1000, timeToPlayMs: 1000, downloadMs: 1000, stalls: 1, stallMs: 2000, waitMs: 3000 });
    // Priority fetch: 50 ms + 1000 ms beats waiting 2 s for the stream.
    expect(r.priorityFetch).toEqual({ preloadBytes: 1000, timeToPlayMs: 1000, downloadMs: 1000, stalls: 1, stallMs: 1050, waitMs: 2050, fetches: 1, fetchedBytes: 1000 });
  });

  it('with the setup modelled, every time to play and wait starts at the launcher; stalls stay the same', () => {
    // Setup: 300 ms start-up + 2 round trips of 50 ms + a 500-byte manifest at 1000 B/s = 900 ms.
    expect(setupMs({ startupMs: 300, manifestBytes: 500 }, 1000, 50)).toBe(900);
    expect(setupMs({}, 1000, 50)).toBe(100); // default: 2 round trips, nothing else
    expect(setupMs({ roundTrips: 3, manifestBytes: 2000, startupMs: 0 }, 4000, 10)).toBe(530);
    const base = { bytesPerSecond: 1000, preloadBytes: 1000, roundTripMs: 50 };
    const without = simulateSession(m, s, base);
    const r = simulateSession(m, s, { ...base, setup: { startupMs: 300, manifestBytes: 500 } });
    expect(r.setupMs).toBe(900);
    expect(r.fullDownload).toEqual({ timeToPlayMs: 4900, downloadMs: 4000 });
    expect(r.oracle).toEqual({ preloadBytes: 1000, timeToPlayMs: 1900, downloadMs: 1000 });
    expect(r.stream).toEqual({ ...without.stream, timeToPlayMs: 1900, downloadMs: 1000, waitMs: 3900 });
    expect(r.priorityFetch).toEqual({ ...without.priorityFetch, timeToPlayMs: 1900, downloadMs: 1000, waitMs: 2950 });
    // roundTrips 0 and no start-up: the manifest's bytes alone.
    expect(simulateSession(m, s, { ...base, setup: { roundTrips: 0, manifestBytes: 250 } }).priorityFetch.timeToPlayMs).toBe(1250);
  });

  it('refuses a setup that is not finite and ≥ 0', () => {
    const base = { bytesPerSecond: 1000, preloadBytes: 1000 };
    for (const setup of [{ roundTrips: -1 }, { roundTrips: 1.5 }, { manifestBytes: -1 }, { manifestBytes: Number.NaN }, { startupMs: Number.POSITIVE_INFINITY }, { startupMs: -5 }]) {
      expect(() => simulateSession(m, s, { ...base, setup })).toThrow(RangeError);
    }
    expect(() => setupMs({}, 0, 50)).toThrow(RangeError);
    expect(() => setupMs({}, 1000, -1)).toThrow(RangeError);
  });

  it('waits for the stream when it is sooner than a fetch, and never stalls at the no-stall preload', () => {
    const near = trace([[0, 'f', 0, 10], [1000, 'f', 2000, 10]]);
    const r = simulateSession(m, near, { bytesPerSecond: 1000, preloadBytes: 1000, roundTripMs: 50 });
    expect(r.priorityFetch).toMatchObject({ stalls: 1, stallMs: 1000, fetches: 0 });
    const ok = simulateSession(m, s, { bytesPerSecond: 1000, preloadBytes: 3000 });
    expect(ok.stream).toMatchObject({ stalls: 0, stallMs: 0, waitMs: 3000 });
    expect(ok.priorityFetch).toMatchObject({ stalls: 0, fetches: 0 });
  });

  it('after a fetch the stream skips the fetched chunk', () => {
    // Chunk 2 read at 0 is fetched (1000 ms, stream paused); at t = 3 s (wall 4 s) the stream has sent 3000 bytes:
    // chunks 0, 1 and 3 (chunk 2 skipped), so the read of chunk 3 does not stall.
    const x = trace([[0, 'f', 2000, 10], [3000, 'f', 3000, 10]]);
    const r = simulateSession(m, x, { bytesPerSecond: 1000, preloadBytes: 0, roundTripMs: 0 });
    expect(r.priorityFetch).toMatchObject({ fetches: 1, stalls: 1, stallMs: 1000 });
    expect(r.unmappedRecords).toBe(0);
  });

  it('a fetch takes the launcher group / file read-ahead; the read waits only for its own chunks', () => {
    // Chunk 2 read at 0: fetched (1000 ms). With a 2000-byte group chunk 3 comes along (arrives at 2 s), so the
    // read of chunk 3 at t = 1.5 s (wall 2.5 s) does not stall; without it, that read is a second fetch.
    const x = trace([[0, 'f', 2000, 10], [1500, 'f', 3000, 10]]);
    const base = { bytesPerSecond: 1000, preloadBytes: 0, roundTripMs: 0 };
    expect(simulateSession(m, x, { ...base, urgentGroupBytes: 2000, fileReadAheadBytes: 0 }).priorityFetch).toMatchObject({ fetches: 1, stalls: 1, stallMs: 1000, fetchedBytes: 2000 });
    expect(simulateSession(m, x, { ...base, urgentGroupBytes: 0, fileReadAheadBytes: 0 }).priorityFetch).toMatchObject({ fetches: 2, stalls: 2, stallMs: 2000, fetchedBytes: 2000 });
    // The launcher's default read-ahead (FILE_READ_AHEAD_BYTES) also takes chunk 3 along.
    expect(simulateSession(m, x, { ...base, urgentGroupBytes: 0 }).priorityFetch).toMatchObject({ fetches: 1, stalls: 1 });
    expect(simulateSession(m, x, { ...base, urgentGroupBytes: 0, fileReadAheadBytes: 1000 }).priorityFetch).toMatchObject({ fetches: 1, stalls: 1, stallMs: 1000 });
    // A read of a group chunk that has not arrived yet waits for its arrival (no second fetch).
    const y = trace([[0, 'f', 2000, 10], [0, 'f', 3000, 10]]);
    expect(simulateSession(m, y, { ...base, urgentGroupBytes: 2000 }).priorityFetch).toMatchObject({ fetches: 1, stalls: 2, stallMs: 2000 });
    expect(() => simulateSession(m, x, { ...base, urgentGroupBytes: -1 })).toThrow(RangeError);
  });

  it('uses the image profile by default and counts unmatched reads', () => {
    const withProfile: Manifest = { ...m, profile: { points: [{ tMs: 0, needBytes: 2000 }] } };
    const r = simulateSession(withProfile, trace([[0, 'f', 0, 1], [5, 'nope', 0, 1], [6, 'f', 1e9, 1]]), { bytesPerSecond: 1000 });
    expect(r.stream.preloadBytes).toBe(2000);
    expect(r.unmappedRecords).toBe(2);
    expect(() => simulateSession(m, s, { bytesPerSecond: 0 })).toThrow(RangeError);
  });
});

describe('trainImage', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await makeTempDir('faststart-');
  });
  afterAll(async () => {
    await removeDir(tmp);
  });

  it('writes a re-sequenced image of the same build with the profile, which verifies', async () => {
    const src = join(tmp, 'src');
    await mkdir(join(src, 'data'), { recursive: true });
    let seed = 3;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed & 0xff);
    await writeFile(join(src, 'data', 'big.pak'), Buffer.from(Array.from({ length: 600_000 }, rnd)));
    await writeFile(join(src, 'game.bin'), Buffer.from(Array.from({ length: 200_000 }, rnd)));
    await buildImage({ input: src, outDir: join(tmp, 'img'), threads: 0 });
    const traces = [
      trace([[0, 'data/big.pak', 500_000, 1000], [10, 'game.bin', 0, 100]], true, 'a'),
      trace([[0, 'data/big.pak', 500_000, 1000], [30, 'data/big.pak', 0, 10]], false, 'b'),
    ];
    const r = await trainImage({ source: join(tmp, 'img'), traces, outDir: join(tmp, 'trained') });
    const before = (await openImage(openImageSource(join(tmp, 'img')))).manifest;
    const after = (await openImage(openImageSource(join(tmp, 'trained')))).manifest;
    expect(after.profile?.points).toEqual(r.profile.points);
    expect(after.profile?.margins).toEqual(r.profile.margins);
    expect(after.chunks.map((c) => Buffer.from(c.hash).toString('hex'))).toEqual(r.order.map((i) => Buffer.from(before.chunks[i].hash).toString('hex')));
    expect(after.files.map((f) => [f.path, f.sizeBytes])).toEqual(before.files.map((f) => [f.path, f.sizeBytes]));
    // The chunk holding big.pak offset 500 000 is streamed first.
    const big = after.files.find((f) => f.path === 'data/big.pak')!;
    expect(big.chunks).toContain(0);
    expect((await verifyImage(openImageSource(join(tmp, 'trained')))).ok).toBe(true);
    await expect(trainImage({ source: join(tmp, 'img'), traces: [], outDir: join(tmp, 'none') })).rejects.toMatchObject({ code: 'faststart-no-traces' });
  });
});
