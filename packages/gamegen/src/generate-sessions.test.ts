import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeTrace, summarizeTrace } from '@rockit/engine';
import type { Trace } from '@rockit/engine';
import { generateSeries, generateSessions, readGpakToc } from './index.js';
import type { SessionsDescription } from './index.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gamegen-sessions-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('generateSessions', () => {
  let build: string;
  let out: string;
  let desc: SessionsDescription;
  let traces: Trace[];

  beforeAll(async () => {
    const series = tempDir();
    await generateSeries({ seed: 3, sizeBytes: 4 * 1024 * 1024, versions: 1, outDir: series });
    build = join(series, 'v1');
    out = tempDir();
    desc = await generateSessions({ buildDir: build, count: 20, seed: 11, outDir: out, appName: 'space', buildId: 4 });
    traces = desc.sessions.map((s) => decodeTrace(readFileSync(join(out, s.file))));
  });

  it('writes valid traces whose summaries match sessions.json', () => {
    expect(traces).toHaveLength(20);
    traces.forEach((t, i) => {
      const s = desc.sessions[i];
      expect(t.header).toMatchObject({ appName: 'space', buildId: 4, sessionId: s.sessionId, firstSession: s.firstSession });
      const sum = summarizeTrace(t);
      expect(sum).toMatchObject({ records: s.records, bytesRead: s.bytesRead, durationMs: s.durationMs });
    });
    expect(new Set(desc.sessions.map((s) => s.sessionId)).size).toBe(20);
  });

  it('reads only real ranges of real files, and asset-aligned ranges of archives', async () => {
    const sizes = new Map<string, number>();
    const ranges = new Map<string, Array<[number, number]>>();
    for (const t of traces) {
      for (const r of t.records) {
        if (!sizes.has(r.path)) sizes.set(r.path, statSync(join(build, r.path)).size);
        expect(r.offsetBytes + r.lengthBytes).toBeLessThanOrEqual(sizes.get(r.path)!);
        if (r.path.endsWith('.pak')) {
          if (!ranges.has(r.path)) {
            const toc = (await readGpakToc(join(build, r.path)))!;
            ranges.set(r.path, [[0, toc.headerBytes], [toc.tocOffset, toc.tocOffset + toc.tocBytes], ...toc.entries.map((e) => [e.offsetBytes, e.offsetBytes + e.sizeBytes] as [number, number])]);
          }
          const inside = ranges.get(r.path)!.some(([a, b]) => r.offsetBytes >= a && r.offsetBytes + r.lengthBytes <= b);
          expect(inside).toBe(true);
        }
      }
    }
    expect([...sizes.keys()].some((p) => p.endsWith('.pak'))).toBe(true);
    expect(sizes.has('Game.x86_64')).toBe(true);
  });

  it('mixes first and later sessions of different lengths, with a shared, mostly fixed start-up', () => {
    const first = desc.sessions.filter((s) => s.firstSession).length;
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(20);
    const durations = desc.sessions.map((s) => s.durationMs);
    expect(Math.max(...durations)).toBeGreaterThan(2 * Math.min(...durations));
    // Start-up: the first reads of two sessions overlap a lot but are not identical.
    const head = (t: Trace) => t.records.slice(0, 40).map((r) => `${r.path}@${r.offsetBytes}`);
    const a = new Set(head(traces[0]));
    const shared = head(traces[1]).filter((k) => a.has(k)).length;
    expect(shared).toBeGreaterThan(20);
    expect(head(traces[0])).not.toEqual(head(traces[1]));
    // The intro movie is watched (many reads) on first sessions only, mostly.
    const movieBytes = (t: Trace) => t.records.filter((r) => r.path.includes('movies/')).reduce((n, r) => n + r.lengthBytes, 0);
    const movieSize = statSync(join(build, 'data/movies/intro.bk2')).size;
    for (const t of traces.filter((x) => x.header.firstSession)) expect(movieBytes(t)).toBeGreaterThanOrEqual(movieSize);
    expect(traces.filter((x) => !x.header.firstSession && movieBytes(x) < movieSize).length).toBeGreaterThan(0);
  });

  it('is deterministic by seed', async () => {
    const again = tempDir();
    const d2 = await generateSessions({ buildDir: build, count: 3, seed: 11, outDir: again, appName: 'space', buildId: 4 });
    for (const s of d2.sessions) expect(readFileSync(join(again, s.file)).equals(readFileSync(join(out, s.file)))).toBe(true);
    const other = tempDir();
    const d3 = await generateSessions({ buildDir: build, count: 1, seed: 12, outDir: other });
    expect(readFileSync(join(other, d3.sessions[0].file)).equals(readFileSync(join(out, desc.sessions[0].file)))).toBe(false);
  });
});
