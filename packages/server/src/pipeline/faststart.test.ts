import { describe, expect, it } from 'vitest';
import type { Manifest, Trace, TraceRecord } from '@rockit/engine';
import { indexManifest, mapTrace, meanCoverage, preloadFigures, preloadFromProfile, preloadImproves, profileOf } from './faststart.js';

/** Two files: a.bin = chunks 0,1 (100 + 50 raw bytes), b.bin = chunk 2 (200); stored sizes 100, 100, 200. */
const manifest = {
  formatVersion: 1,
  chunking: {} as Manifest['chunking'],
  files: [
    { path: 'a.bin', type: 'file', mode: 0o644, sizeBytes: 150, sha256: new Uint8Array(), linkTarget: '', chunks: [0, 1] },
    { path: 'b.bin', type: 'file', mode: 0o644, sizeBytes: 200, sha256: new Uint8Array(), linkTarget: '', chunks: [2] },
  ],
  chunks: [
    { rawSizeBytes: 100, storedSizeBytes: 100 },
    { rawSizeBytes: 50, storedSizeBytes: 100 },
    { rawSizeBytes: 200, storedSizeBytes: 200 },
  ],
  packs: [],
} as unknown as Manifest;

const trace = (records: TraceRecord[], firstSession = false): Trace => ({
  header: { orgName: 'o', appName: 'a', buildId: 1, dxfName: '', sessionId: 's', firstSession, startTimeUnixSeconds: 0 },
  records,
});

describe('FastStart glue: mapping by path and offset, the no-stall preload of a stream order', () => {
  const index = indexManifest(manifest);

  it('maps reads onto chunks (first need per chunk) and counts bytes outside the build as uncovered', () => {
    const m = mapTrace(index, trace([
      { tMs: 5, path: 'a.bin', offsetBytes: 90, lengthBytes: 20 }, // chunks 0 and 1
      { tMs: 7, path: 'a.bin', offsetBytes: 140, lengthBytes: 100 }, // past the end: 10 covered
      { tMs: 9, path: 'gone.bin', offsetBytes: 0, lengthBytes: 30 }, // not in the build
      { tMs: 12, path: 'b.bin', offsetBytes: 0, lengthBytes: 1 },
      { tMs: 20, path: 'a.bin', offsetBytes: 0, lengthBytes: 1 }, // chunk 0 again: first need stays 5
    ]));
    expect([...m.firstNeed.entries()].sort((x, y) => x[0] - y[0])).toEqual([[0, 5], [1, 5], [2, 12]]);
    expect(m.readBytes).toBe(20 + 100 + 30 + 1 + 1);
    expect(m.coveredBytes).toBe(20 + 10 + 1 + 1);
    expect(meanCoverage([m])).toBeCloseTo(32 / 152, 10);
    expect(meanCoverage([])).toBe(0);
  });

  it('a read at an offset past the file end, or of another build\'s file, maps to nothing', () => {
    const m = mapTrace(index, trace([{ tMs: 0, path: 'a.bin', offsetBytes: 150, lengthBytes: 10 }, { tMs: 1, path: '../a.bin', offsetBytes: 0, lengthBytes: 1 }]));
    expect(m.firstNeed.size).toBe(0);
    expect(m.coveredBytes).toBe(0);
  });

  it('profile and preload, hand-computed: b.bin first needs 200 stream bytes at t=0 in the trained order, 400 in tar order', () => {
    const s1 = mapTrace(index, trace([{ tMs: 0, path: 'b.bin', offsetBytes: 0, lengthBytes: 10 }, { tMs: 1000, path: 'a.bin', offsetBytes: 0, lengthBytes: 10 }]));
    const tar = profileOf(manifest, [0, 1, 2], [s1]);
    // Tar order: chunk 2 ends at 400 (needed at 0), chunk 0 ends at 100 (needed at 1000: below the running max, dropped).
    expect(tar.points).toEqual([{ tMs: 0, needBytes: 400 }]);
    const trained = profileOf(manifest, [2, 0, 1], [s1]);
    expect(trained.points).toEqual([{ tMs: 0, needBytes: 200 }, { tMs: 1000, needBytes: 300 }]);
    // 8000 bit/s = 1 byte/ms: max(200 − 0, 300 − 1000) = 200.
    expect(preloadFromProfile(trained, 8000)).toBe(200);
    expect(preloadFromProfile(tar, 8000)).toBe(400);
    expect(preloadFromProfile({ points: [] }, 8000)).toBe(0);
    const before = preloadFigures(tar);
    const after = preloadFigures(trained);
    expect(before).toEqual({ '25Mbit': 400, '100Mbit': 400, '1Gbit': 400 });
    expect(preloadImproves(before, after)).toBe(true);
    expect(preloadImproves(after, after)).toBe(false);
    expect(preloadImproves(after, before)).toBe(false);
  });

  it('the profile is the envelope over sessions: each time keeps the largest need', () => {
    const s1 = mapTrace(index, trace([{ tMs: 10, path: 'a.bin', offsetBytes: 0, lengthBytes: 1 }]));
    const s2 = mapTrace(index, trace([{ tMs: 10, path: 'b.bin', offsetBytes: 0, lengthBytes: 1 }]));
    expect(profileOf(manifest, [0, 1, 2], [s1, s2]).points).toEqual([{ tMs: 10, needBytes: 400 }]);
  });
});
