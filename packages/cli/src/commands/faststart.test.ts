// The FastStart commands through the real `rockit` binary: trace record (under strace), convert, faststart
// train / simulate, image inspect.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { decodeTrace, encodeTrace, encodeTraceNdjson, parseAnyTrace, type Trace } from '@rockit/engine';
import { runRockit } from '../e2e/test-support/processes.js';

const rockit = (argv: string[]) => runRockit(argv, {});
let tmp: string;
let game: string;

/** Incompressible, distinct content per seed (SHA-256 in counter mode), so no chunk is shared between files. */
function bytes(n: number, seed: number): Buffer {
  const blocks: Buffer[] = [];
  for (let i = 0; i * 32 < n; i++) blocks.push(createHash('sha256').update(`${seed}:${i}`).digest());
  return Buffer.concat(blocks).subarray(0, n);
}

function session(id: string, reads: Array<[number, string, number, number]>, firstSession = false): Trace {
  return {
    header: { orgName: 'o', appName: 'a', buildId: 1, dxfName: '', sessionId: id, firstSession, startTimeUnixSeconds: 1_767_225_600 },
    records: reads.map(([tMs, path, offsetBytes, lengthBytes]) => ({ tMs, path, offsetBytes, lengthBytes })),
  };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rockit-faststart-cli-'));
  game = join(tmp, 'game');
  await mkdir(join(game, 'data'), { recursive: true });
  await writeFile(join(game, 'data', 'a.pak'), bytes(300_000, 1));
  await writeFile(join(game, 'data', 'b.pak'), bytes(300_000, 2));
  await writeFile(join(game, 'game.bin'), bytes(100_000, 3));
  await writeFile(join(tmp, 'outside.txt'), 'not part of the game\n');
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('rockit trace record', () => {
  it('records reads of files under --root from a real program under strace (forks followed)', async () => {
    const script = [
      "const fs = require('fs');",
      "fs.readFileSync('game.bin');",
      "const fd = fs.openSync('data/a.pak', 'r');",
      'fs.readSync(fd, Buffer.alloc(1000), 0, 1000, 200000);',
      "fs.readFileSync('../outside.txt');",
    ].join(' ');
    const out = join(tmp, 'rec.ndjson');
    const r = await rockit([
      'trace', 'record', '--root', game, '--out', out, '--app', 'demo', '--first-session', '--json', '--',
      'sh', '-c', `cd '${game}' && tail -c 100 data/b.pak > /dev/null && '${process.execPath}' -e "${script}"`,
    ]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ format: 'ndjson', exitCode: 0 });
    const noRoot = await rockit(['trace', 'record', '--root', join(tmp, 'missing'), '--out', join(tmp, 'x.rtrace'), '--', 'true']);
    expect(noRoot.exitCode).toBe(1);
    expect(noRoot.stderr).toMatch(/ENOENT|no such file/i);
    const text = await readFile(out, 'utf8');
    expect(JSON.parse(text.split('\n')[0])).toMatchObject({ format: 'rockit-trace', version: 1, app: 'demo', firstSession: true });
    const t = parseAnyTrace(Buffer.from(text));
    const byPath = (p: string) => t.records.filter((x) => x.path === p);
    expect(new Set(t.records.map((x) => x.path))).toEqual(new Set(['game.bin', 'data/a.pak', 'data/b.pak']));
    // tail reads the last 100 bytes (after an lseek from the end).
    expect(byPath('data/b.pak').some((x) => x.offsetBytes + x.lengthBytes === 300_000 && x.offsetBytes <= 299_900)).toBe(true);
    expect(byPath('data/a.pak')).toContainEqual(expect.objectContaining({ offsetBytes: 200_000, lengthBytes: 1000 }));
    // The whole of game.bin, in sequential reads.
    const covered = byPath('game.bin').reduce((a, x) => a + x.lengthBytes, 0);
    expect(covered).toBeGreaterThanOrEqual(100_000);
    for (let i = 1; i < t.records.length; i++) expect(t.records[i].tMs).toBeGreaterThanOrEqual(t.records[i - 1].tMs);
  });
});

describe('rockit trace convert / faststart train / image inspect / faststart simulate', () => {
  const sessions = [
    session('s1', [[0, 'game.bin', 0, 100_000], [200, 'data/a.pak', 0, 50_000], [4000, 'data/b.pak', 100_000, 10_000]], true),
    session('s2', [[0, 'game.bin', 0, 100_000], [300, 'data/a.pak', 10_000, 50_000], [5000, 'data/b.pak', 120_000, 10_000]]),
    session('s3', [[0, 'game.bin', 0, 60_000], [100, 'data/a.pak', 0, 70_000], [3000, 'data/b.pak', 0, 5000]]),
  ];

  it('converts binary ⇄ NDJSON (plain or zstd input) without loss', async () => {
    const bin = join(tmp, 's1.rtrace');
    await writeFile(bin, encodeTrace(sessions[0]));
    const r1 = await rockit(['trace', 'convert', bin, '--out', join(tmp, 's1.ndjson'), '--json']);
    expect(r1.exitCode).toBe(0);
    expect(JSON.parse(r1.stdout)).toMatchObject({ format: 'ndjson', records: 3 });
    await writeFile(join(tmp, 's1.ndjson.zst'), compress(await readFile(join(tmp, 's1.ndjson'))));
    const r2 = await rockit(['trace', 'convert', join(tmp, 's1.ndjson.zst'), '--out', join(tmp, 's1b.rtrace')]);
    expect(r2.exitCode).toBe(0);
    expect(decodeTrace(await readFile(join(tmp, 's1b.rtrace')))).toEqual(decodeTrace(encodeTrace(sessions[0])));
    const bad = join(tmp, 'bad.ndjson');
    await writeFile(bad, '{"format":"rockit-trace","version":9}\n');
    const r3 = await rockit(['trace', 'convert', bad, '--out', join(tmp, 'x')]);
    expect(r3.exitCode).toBe(1);
    expect(r3.stderr).toMatch(/version 9 is not supported/);
  });

  it('trains a re-sequenced image, inspects it and simulates held-out sessions', async () => {
    const img = join(tmp, 'img');
    expect((await rockit(['image', 'build', game, '--out', img, '--json'])).exitCode).toBe(0);
    const traces = join(tmp, 'traces');
    await mkdir(traces);
    await writeFile(join(traces, 's1.rtrace'), encodeTrace(sessions[0]));
    await writeFile(join(traces, 's2.ndjson'), encodeTraceNdjson(sessions[1]));
    await writeFile(join(traces, 'sessions.json'), '{"not":"a trace"}');
    const extra = join(tmp, 's3.ndjson.zst');
    await writeFile(extra, compress(encodeTraceNdjson(sessions[2])));
    const trained = join(tmp, 'trained');
    const t = await rockit(['faststart', 'train', '--image', img, '--traces', traces, extra, '--out', trained, '--json']);
    expect(t.stderr).toBe('');
    expect(t.exitCode).toBe(0);
    const tr = JSON.parse(t.stdout);
    expect(tr.stats).toMatchObject({ traces: 3, records: 9, unknownPathRecords: 0 });
    expect(Object.keys(tr.preloadBytes)).toEqual(['25Mbit', '100Mbit', '1000Mbit']);

    const i = await rockit(['image', 'inspect', trained, '--json']);
    expect(i.exitCode).toBe(0);
    const layout = JSON.parse(i.stdout);
    expect(layout.profile.preloadBytes).toEqual(tr.preloadBytes);
    expect(layout.profile.margins.length).toBeGreaterThan(0);
    expect(layout.stream.length).toBe(layout.chunks);
    for (const c of layout.stream) {
      expect(c).toEqual({ storedBytes: expect.any(Number), rawBytes: expect.any(Number), ranges: expect.any(Array) });
      for (const r of c.ranges) expect(Object.keys(r)).toEqual(['path', 'offset', 'length']);
    }
    // game.bin, read by every session at t = 0, is streamed first.
    expect(layout.stream[0].ranges[0]).toMatchObject({ path: 'game.bin', offset: 0 });
    const untrained = JSON.parse((await rockit(['image', 'inspect', img, '--json'])).stdout);
    expect(untrained.profile).toBeNull();

    const held = join(tmp, 'held');
    await mkdir(held);
    await writeFile(join(held, 'h1.rtrace'), encodeTrace(session('h1', [[0, 'game.bin', 0, 100_000], [250, 'data/a.pak', 5000, 40_000], [4500, 'data/b.pak', 110_000, 5000]])));
    const s = await rockit(['faststart', 'simulate', '--image', trained, '--sessions', held, '--bandwidth', '25,100,1000', '--json']);
    expect(s.stderr).toBe('');
    expect(s.exitCode).toBe(0);
    const rep = JSON.parse(s.stdout);
    expect(rep.bandwidthsMbit).toEqual([25, 100, 1000]);
    expect(rep.sessions).toHaveLength(1);
    const r25 = rep.sessions[0].results['25Mbit'];
    expect(Object.keys(r25).sort()).toEqual(['fullDownload', 'noStallPreloadBytes', 'oracle', 'priorityFetch', 'setupMs', 'stream']);
    expect(r25.stream.preloadBytes).toBe(tr.preloadBytes['25Mbit']);
    expect(r25.fullDownload.downloadMs).toBeCloseTo((layout.streamBytes / 3_125_000) * 1000, 6);
    // Times from the launcher's start by default: 2 round trips of 50 ms + the manifest at b (no start-up).
    expect(rep.setup).toEqual({ roundTrips: 2, manifestBytes: rep.image.manifestBytes, startupMs: 0 });
    expect(r25.setupMs).toBeCloseTo(100 + (rep.image.manifestBytes / 3_125_000) * 1000, 6);
    expect(r25.fullDownload.timeToPlayMs).toBeCloseTo(r25.setupMs + r25.fullDownload.downloadMs, 6);
    expect(r25.priorityFetch.timeToPlayMs).toBeCloseTo(r25.setupMs + r25.priorityFetch.downloadMs, 6);
    expect(r25.oracle.timeToPlayMs).toBeLessThanOrEqual(r25.fullDownload.timeToPlayMs);
    expect(rep.summary['1000Mbit'].sessions).toBe(1);
    expect(rep.summary['25Mbit'].setupMs).toBe(r25.setupMs);
    // --startup and --setup-round-trips move every time to play; --no-setup times the download alone.
    const st = JSON.parse((await rockit(['faststart', 'simulate', '--image', trained, '--sessions', held, '--bandwidth', '25', '--startup', '250', '--setup-round-trips', '3', '--json'])).stdout);
    const s25 = st.sessions[0].results['25Mbit'];
    expect(s25.setupMs).toBeCloseTo(r25.setupMs + 250 + 50, 6);
    expect(s25.priorityFetch.waitMs - r25.priorityFetch.waitMs).toBeCloseTo(300, 6);
    expect(s25.priorityFetch.stalls).toBe(r25.priorityFetch.stalls);
    const bare = JSON.parse((await rockit(['faststart', 'simulate', '--image', trained, '--sessions', held, '--bandwidth', '25', '--no-setup', '--json'])).stdout);
    expect(bare.setup).toBeNull();
    expect(bare.sessions[0].results['25Mbit'].setupMs).toBe(0);
    expect(bare.sessions[0].results['25Mbit'].priorityFetch.timeToPlayMs).toBe(r25.priorityFetch.downloadMs);
    const text = await rockit(['faststart', 'simulate', '--image', trained, '--sessions', held, '--bandwidth', '25', '--startup', '250']);
    expect(text.stdout).toMatch(/setup = start-up 0\.25 s \+ 2 round trips of 50 ms/);
    for (const bad of [['--startup', '-1'], ['--startup', 'abc'], ['--startup', '1e9'], ['--setup-round-trips', '1.5'], ['--setup-round-trips', '-2'], ['--rtt', '']]) {
      const r = await rockit(['faststart', 'simulate', '--image', trained, '--sessions', held, ...bad]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(bad[0]);
    }

    const none = join(tmp, 'empty');
    await mkdir(none);
    const z = await rockit(['faststart', 'train', '--image', img, '--traces', none, '--out', join(tmp, 'never')]);
    expect(z.exitCode).toBe(1);
    expect(z.stderr).toMatch(/at least one trace/);
    // Truncated, wrong-version and lying traces: clear errors, or counted when they only miss the build.
    const bin = encodeTrace(sessions[0]);
    await writeFile(join(tmp, 'cut.rtrace'), bin.subarray(0, bin.length - 3));
    const cut = await rockit(['faststart', 'train', '--image', img, '--traces', join(tmp, 'cut.rtrace'), '--out', join(tmp, 'never')]);
    expect(cut.exitCode).toBe(1);
    expect(cut.stderr).toMatch(/cut\.rtrace: .*\(trace-truncated\)/);
    const v2 = Buffer.from(bin);
    v2[4] = 2;
    await writeFile(join(tmp, 'v2.rtrace'), v2);
    const ver = await rockit(['faststart', 'train', '--image', img, '--traces', join(tmp, 'v2.rtrace'), '--out', join(tmp, 'never')]);
    expect(ver.stderr).toMatch(/\(trace-unsupported-version\)/);
    await writeFile(join(tmp, 'liar.ndjson'), encodeTraceNdjson(session('liar', [[0, 'no/such/file', 0, 10], [5, 'game.bin', 2 ** 40, 10]])));
    const liar = await rockit(['faststart', 'train', '--image', img, '--traces', join(tmp, 'liar.ndjson'), '--out', join(tmp, 'never')]);
    expect(liar.exitCode).toBe(1);
    expect(liar.stderr).toMatch(/no trace reads any chunk of this build/);
    const mixed = await rockit(['faststart', 'train', '--image', img, '--traces', join(tmp, 'liar.ndjson'), join(traces, 's1.rtrace'), '--out', join(tmp, 'mixed'), '--json']);
    expect(mixed.exitCode).toBe(0);
    expect(JSON.parse(mixed.stdout).stats).toMatchObject({ traces: 2, unknownPathRecords: 1, beyondEndRecords: 1 });
    const b = await rockit(['faststart', 'simulate', '--image', trained, '--sessions', held, '--bandwidth', '25,-3']);
    expect(b.exitCode).toBe(1);
    expect(b.stderr).toMatch(/--bandwidth/);
  });
});
