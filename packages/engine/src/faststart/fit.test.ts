import { describe, expect, it } from 'vitest';
import { DEFAULT_CHUNKING } from '../format/constants.js';
import { Codec, type Manifest } from '../format/types.js';
import type { Trace, TraceRecord } from '../trace/trace-types.js';
import { clipCurve, fitPreloads, preloadCandidates, reorderedManifest } from './fit.js';
import { curvePreloadBytes } from './profile.js';
import { preloadBytes, simulateSession, trainStreamOrder } from './index.js';

/** One file `f` of `n` chunks of 1000 bytes (raw = stored). */
function oneFile(n: number): Manifest {
  const chunks: Manifest['chunks'] = [];
  for (let i = 0; i < n; i++) {
    const hash = new Uint8Array(32);
    new DataView(hash.buffer).setUint32(0, i);
    chunks.push({ hash, rawSizeBytes: 1000, storedSizeBytes: 1000, codec: Codec.Raw, pack: 0, offset: 8 + i * 1000 });
  }
  const file = { path: 'f', type: 'file' as const, mode: 0o644, sizeBytes: n * 1000, sha256: new Uint8Array(32), linkTarget: '', chunks: chunks.map((_, i) => i) };
  return { formatVersion: 1, chunking: { ...DEFAULT_CHUNKING }, files: [file], chunks, packs: [{ name: 'p.rkp', sizeBytes: 8 + n * 1000 }] };
}

function session(reads: Array<[number, number]>, id: string): Trace {
  return {
    header: { orgName: 'o', appName: 'a', buildId: 1, dxfName: '', sessionId: id, firstSession: false, startTimeUnixSeconds: 0 },
    records: reads.map(([tMs, chunk]): TraceRecord => ({ tMs, path: 'f', offsetBytes: chunk * 1000, lengthBytes: 1000 })),
  };
}

describe('launcher fit', () => {
  it('clipCurve caps P(b) at the targets and keeps need non-decreasing', () => {
    const points = [{ tMs: 0, needBytes: 5000 }, { tMs: 1000, needBytes: 20_000 }, { tMs: 5000, needBytes: 30_000 }];
    const bw = [1000, 10_000];
    const clipped = clipCurve(points, bw, [3000, 8000]);
    expect(curvePreloadBytes(clipped, 1000)).toBeLessThanOrEqual(3000);
    expect(curvePreloadBytes(clipped, 10_000)).toBeLessThanOrEqual(8000);
    for (let i = 1; i < clipped.length; i++) {
      expect(clipped[i].tMs).toBeGreaterThan(clipped[i - 1].tMs);
      expect(clipped[i].needBytes).toBeGreaterThan(clipped[i - 1].needBytes);
    }
    // Targets at or above the curve's own P(b) leave it as it is.
    expect(clipCurve(points, bw, bw.map((b) => curvePreloadBytes(points, b) + 1))).toEqual(points);
    const zero = clipCurve(points, bw, [0, 0]);
    for (const b of bw) expect(curvePreloadBytes(zero, b)).toBe(0);
  });

  it('preloadCandidates: 0 first, the reference among them, ascending, capped by the stream', () => {
    const c = preloadCandidates(10_000, 1_000_000);
    expect(c[0]).toBe(0);
    expect(c).toContain(10_000);
    expect([...c].sort((a, b) => a - b)).toEqual(c);
    expect(new Set(c).size).toBe(c.length);
    expect(Math.max(...preloadCandidates(10_000_000, 1_000_000))).toBe(1_000_000);
  });

  it('reorderedManifest stores the chunks in the given order and keeps every file’s content', () => {
    const m = oneFile(4);
    const r = reorderedManifest({ ...m, profile: { points: [{ tMs: 0, needBytes: 1 }] } }, Int32Array.from([2, 0, 3, 1]));
    expect(r.profile).toBeUndefined();
    expect(r.files[0].chunks.map((c) => r.chunks[c].hash)).toEqual(m.files[0].chunks.map((c) => m.chunks[c].hash));
    expect(r.chunks[0].hash).toEqual(m.chunks[2].hash);
  });

  it('fitPreloads picks the preload with the least launcher cost on the held-out sessions', () => {
    // Every session reads the first 20 chunks at once, in stream order: at 1000 B/s they take 20 s either way,
    // as preload or as stalls; with stalls weighing double, preloading them all is the cheapest.
    const m = oneFile(40);
    const held = session(Array.from({ length: 20 }, (_, i): [number, number] => [0, i]), 'h');
    const order = Int32Array.from({ length: 40 }, (_, i) => i);
    const folds = [{ order, held }, { order, held: { ...held } }];
    const weighted = fitPreloads(m, folds, { bandwidths: [1000], floor: [10_000], streamBytes: 40_000, roundTripMs: 1000, stallWeight: 2 });
    expect(weighted[0]).toBe(20_000);
    // Stalls weighing as much as waiting: nothing is gained by a preload, the lowest candidate stays.
    expect(fitPreloads(m, folds, { bandwidths: [1000], floor: [10_000], streamBytes: 40_000, roundTripMs: 1000, stallWeight: 1 })).toEqual([0]);
    // Deterministic.
    expect(fitPreloads(m, folds, { bandwidths: [1000], floor: [10_000], streamBytes: 40_000, roundTripMs: 1000, stallWeight: 2 })).toEqual(weighted);
  });

  it('trainStreamOrder with the fit: the profile gives the fitted preload, never worse for the fitted sessions', () => {
    const m = oneFile(40);
    const traces = Array.from({ length: 6 }, (_, k) => session([[0, 0], [0, 1], [0, 2], [100 + k, 10 + k], [5000, 20 + k]], `s${k}`));
    const fitted = trainStreamOrder(m, traces, { marginBandwidths: [1000, 100_000] });
    const plain = trainStreamOrder(m, traces, { marginBandwidths: [1000, 100_000], fitLauncher: false });
    expect(fitted.order).toEqual(plain.order);
    for (const b of [1000, 100_000]) expect(preloadBytes(fitted.profile, b)).toBeGreaterThanOrEqual(0);
    const cost = (p: typeof fitted, b: number) => {
      const r = reorderedManifest(m, Int32Array.from(p.order));
      return traces.reduce((a, t) => {
        const l = simulateSession({ ...r, profile: p.profile }, t, { bytesPerSecond: b }).priorityFetch;
        return a + l.timeToPlayMs + 2 * l.stallMs;
      }, 0);
    };
    expect(cost(fitted, 1000)).toBeLessThanOrEqual(cost(plain, 1000) * 1.05);
  });
});
