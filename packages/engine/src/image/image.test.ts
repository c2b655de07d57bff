import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zstdCompress } from '../codec/chunk-codec.js';
import { resolveCodecWorkerFile } from '../codec/codec-pool.js';
import { CorruptionError, EngineError, FormatError } from '../errors.js';
import { ImageWriter } from './image-writer.js';
import { buildImage, type BuildResult } from './build.js';
import { extractImage } from './extract.js';
import { hex } from './reader.js';
import { Codec } from '../format/types.js';
import { describeTree, makeTempDir, removeDir, Rng, writeRandomTree } from './test-support/random-tree.js';
import { verifyImage } from './verify.js';

let tmp: string;
let src: string;
let expected: Awaited<ReturnType<typeof describeTree>>;
let base: BuildResult;
const SMALL_PACKS = 96 * 1024;

beforeAll(async () => {
  tmp = await makeTempDir('image');
  src = join(tmp, 'src');
  await writeRandomTree(src, 1234, { files: 24, maxFileBytes: 150_000 });
  expected = await describeTree(src);
  base = await buildImage({ input: src, outDir: join(tmp, 'base'), threads: 0, packSizeBytes: SMALL_PACKS });
});
afterAll(async () => {
  await removeDir(tmp);
});

async function roundTrip(input: string, name: string): Promise<BuildResult> {
  const r = await buildImage({ input, outDir: join(tmp, `${name}-img`), threads: 0 });
  const out = join(tmp, `${name}-out`);
  const x = await extractImage({ source: join(tmp, `${name}-img`), outDir: out });
  expect(x.resumed).toBe(false);
  expect(await describeTree(out)).toEqual(expected);
  return r;
}

describe('build → extract round trips', () => {
  it('from a folder: contents, folders, exec bits, symlinks, hard links, duplicates', async () => {
    const r = await roundTrip(src, 'folder');
    expect(r.stats.uniqueChunks).toBeLessThan(r.stats.chunks); // duplicate content stored once
    expect(r.stats.dedupRatio).toBeGreaterThan(1);
    expect(r.manifest.files.some((f) => f.type === 'hardlink')).toBe(true);
    expect(r.manifest.files.some((f) => f.type === 'file' && f.sizeBytes === 0)).toBe(true);
    expect(existsSync(join(tmp, 'folder-out.rockit-staging'))).toBe(false);
    expect(existsSync(join(tmp, 'folder-out.rockit-state.json'))).toBe(false);
  });

  it('from plain, gzip and zstd tars (same manifest as the folder, byte-identical output)', async () => {
    const plain = join(tmp, 'src.tar');
    execFileSync('tar', ['-cf', plain, '-C', src, '.']);
    const fromTar = await roundTrip(plain, 'tar');
    const gz = join(tmp, 'src.tar.gz');
    execFileSync('tar', ['-czf', gz, '-C', src, '.']);
    await roundTrip(gz, 'gz');
    const zst = join(tmp, 'src.tar.zst');
    await writeFile(zst, zstdCompress(await readFile(plain), 3));
    const fromZst = await roundTrip(zst, 'zst');
    expect(fromZst.manifest.chunks.map((c) => hex(c.hash))).toEqual(fromTar.manifest.chunks.map((c) => hex(c.hash)));
    expect(new Set(fromTar.manifest.chunks.map((c) => hex(c.hash)))).toEqual(new Set(base.manifest.chunks.map((c) => hex(c.hash))));
  });

  it('gives the same image with the worker pool as on the calling thread', async () => {
    const worker = resolveCodecWorkerFile();
    if (worker === undefined) return; // only TypeScript sources present (no `tsc -b` yet): nothing to compare
    const pooled = await buildImage({ input: src, outDir: join(tmp, 'pooled'), threads: 2, packSizeBytes: SMALL_PACKS });
    expect(pooled.manifest).toEqual(base.manifest);
    expect(await readdir(join(tmp, 'pooled', 'packs'))).toEqual(await readdir(join(tmp, 'base', 'packs')));
  });

  it('gives the same image when every pack is flushed to disk in the background (syncPacks)', async () => {
    const synced = await buildImage({ input: src, outDir: join(tmp, 'synced'), threads: 0, packSizeBytes: SMALL_PACKS, syncPacks: true });
    expect(synced.manifest).toEqual(base.manifest);
    expect(await readdir(join(tmp, 'synced', 'packs'))).toEqual(await readdir(join(tmp, 'base', 'packs')));
    expect(synced.manifest.packs.length).toBeGreaterThan(3);
    expect((await verifyImage(join(tmp, 'synced'))).ok).toBe(true);
  });

  it('can be cancelled: build removes its partial output, extract keeps its staging for a resume', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(buildImage({ input: src, outDir: join(tmp, 'cancelled'), threads: 0, signal: ac.signal })).rejects.toThrow('stop');
    expect((await readdir(tmp)).filter((n) => n.startsWith('cancelled'))).toEqual([]);
    await expect(extractImage({ source: join(tmp, 'base'), outDir: join(tmp, 'cancelled-x'), signal: ac.signal, threads: 0 })).rejects.toThrow('stop');
    expect(existsSync(join(tmp, 'cancelled-x'))).toBe(false);
    const r = await extractImage({ source: join(tmp, 'base'), outDir: join(tmp, 'cancelled-x'), threads: 0 });
    expect(r.resumed).toBe(true);
    expect(await describeTree(join(tmp, 'cancelled-x'))).toEqual(expected);
  });

  it('refuses a non-empty output folder and leaves it alone', async () => {
    const out = join(tmp, 'busy');
    await writeFile(join(tmp, 'marker'), 'x');
    await expect(buildImage({ input: src, outDir: tmp, threads: 0 })).rejects.toBeInstanceOf(EngineError);
    await expect(extractImage({ source: join(tmp, 'base'), outDir: tmp })).rejects.toBeInstanceOf(EngineError);
    expect(existsSync(out)).toBe(false);
  });
});

function serve(dir: string, opts: { failPackRequestsAfter?: number; ignoreRange?: boolean } = {}): Promise<{ server: Server; url: string; packRequests: () => number }> {
  let packRequests = 0;
  const server = createServer(async (req, res) => {
    const name = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/img\//, '');
    if (name.startsWith('packs/')) {
      packRequests++;
      if (opts.failPackRequestsAfter !== undefined && packRequests > opts.failPackRequestsAfter) {
        res.socket?.destroy(); // the connection drops
        return;
      }
    }
    let body: Buffer;
    try {
      body = await readFile(join(dir, name));
    } catch {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m || opts.ignoreRange) {
      res.writeHead(200, { 'content-length': body.length }).end(body);
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), body.length - 1);
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${body.length}`, 'content-length': end - start + 1 }).end(body.subarray(start, end + 1));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/img/`, packRequests: () => packRequests })),
  );
}

describe('extraction over HTTP', () => {
  it('extracts with range requests, coalescing adjacent chunks', async () => {
    const s = await serve(join(tmp, 'base'));
    try {
      const out = join(tmp, 'http-out');
      const r = await extractImage({ source: s.url, outDir: out });
      expect(await describeTree(out)).toEqual(expected);
      expect(r.chunksFetched).toBe(base.manifest.chunks.length);
      expect(s.packRequests()).toBeLessThan(base.manifest.chunks.length);
    } finally {
      s.server.close();
    }
  });

  it('copes with a server that ignores Range (whole-file 200 responses)', async () => {
    const s = await serve(join(tmp, 'base'), { ignoreRange: true });
    try {
      const out = join(tmp, 'norange-out');
      await extractImage({ source: s.url, outDir: out, threads: 0 });
      expect(await describeTree(out)).toEqual(expected);
    } finally {
      s.server.close();
    }
  });

  it('resumes after the connection fails midway, fetching only what is missing', async () => {
    const out = join(tmp, 'resume-out');
    const failing = await serve(join(tmp, 'base'), { failPackRequestsAfter: 3 });
    const http = { attempts: 2, retryDelayMs: 1 };
    try {
      const err = await extractImage({ source: failing.url, outDir: out, http, reads: { parallelReads: 1 }, stateEveryBytes: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe('source-unavailable');
    } finally {
      failing.server.close();
    }
    expect(existsSync(out)).toBe(false);
    expect(existsSync(out + '.rockit-state.json')).toBe(true);
    const good = await serve(join(tmp, 'base'));
    try {
      const r = await extractImage({ source: good.url, outDir: out, http });
      expect(r.resumed).toBe(true);
      expect(r.chunksFetched).toBeGreaterThan(0);
      expect(r.chunksFetched).toBeLessThan(base.manifest.chunks.length);
      expect(await describeTree(out)).toEqual(expected);
      expect(existsSync(out + '.rockit-state.json')).toBe(false);
    } finally {
      good.server.close();
    }
  });

  it('re-fetches files that were damaged in the staging folder between attempts (complete or partial)', async () => {
    const out = join(tmp, 'resume2-out');
    const failing = await serve(join(tmp, 'base'), { failPackRequestsAfter: 4 });
    try {
      await extractImage({ source: failing.url, outDir: out, http: { attempts: 1 }, reads: { parallelReads: 1 }, stateEveryBytes: 1 }).catch(() => undefined);
    } finally {
      failing.server.close();
    }
    const staging = out + '.rockit-staging';
    const firstFile = base.manifest.files.find((f) => f.type === 'file' && f.sizeBytes > 1000 && f.chunks.every((c) => c < 3))!;
    expect(firstFile).toBeDefined();
    await writeFile(join(staging, firstFile.path), 'tampered');
    // Also damage every other file already present (complete or partially written).
    for (const f of base.manifest.files) {
      if (f.type === 'file' && f.sizeBytes > 0 && existsSync(join(staging, f.path))) await writeFile(join(staging, f.path), 'x');
    }
    const r = await extractImage({ source: join(tmp, 'base'), outDir: out });
    expect(r.resumed).toBe(true);
    expect(await describeTree(out)).toEqual(expected);
  });
});

describe('resume of a partially written file', () => {
  it('re-fetches the part written before the interruption when it was damaged meanwhile', async () => {
    const one = join(tmp, 'one-src');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(one);
    const big = new Rng(99).bytes(700_000);
    await writeFile(join(one, 'big.pak'), big);
    const img = await buildImage({ input: one, outDir: join(tmp, 'one-img'), threads: 0, packSizeBytes: 64 * 1024 });
    const out = join(tmp, 'one-out');
    const failing = await serve(join(tmp, 'one-img'), { failPackRequestsAfter: 3 });
    try {
      await extractImage({ source: failing.url, outDir: out, http: { attempts: 1 }, reads: { parallelReads: 1 }, stateEveryBytes: 1 }).catch(() => undefined);
    } finally {
      failing.server.close();
    }
    const state = JSON.parse(await readFile(out + '.rockit-state.json', 'utf8')) as { chunksDone: number };
    expect(state.chunksDone).toBeGreaterThan(0); // part of big.pak was written ...
    expect(state.chunksDone).toBeLessThan(img.manifest.chunks.length); // ... but not all of it
    await writeFile(join(out + '.rockit-staging', 'big.pak'), 'damaged');
    const r = await extractImage({ source: join(tmp, 'one-img'), outDir: out });
    expect(r.resumed).toBe(true);
    expect((await readFile(join(out, 'big.pak'))).equals(big)).toBe(true);
  });
});

describe('corruption is detected and named', () => {
  async function damagedCopy(name: string, damage: (dir: string) => Promise<void>): Promise<string> {
    const dir = join(tmp, name);
    execFileSync('cp', ['-r', join(tmp, 'base'), dir]);
    await damage(dir);
    return dir;
  }
  const chunk0 = () => base.manifest.chunks[0];
  const pack0 = () => base.manifest.packs[chunk0().pack].name;

  it('a flipped byte in a pack', async () => {
    const dir = await damagedCopy('flip-pack', async (d) => {
      const p = join(d, 'packs', pack0());
      const b = await readFile(p);
      b[chunk0().offset + 10] ^= 0xff;
      await writeFile(p, b);
    });
    const report = await verifyImage(dir);
    expect(report.ok).toBe(false);
    expect(report.damagedChunks).toEqual([{ hash: hex(chunk0().hash), pack: pack0(), offset: chunk0().offset, reason: 'hash-mismatch' }]);
    const users = base.manifest.files.filter((f) => f.chunks.includes(0)).map((f) => f.path);
    expect(report.damagedFiles).toEqual(expect.arrayContaining(users));
    for (const threads of [0, 2]) {
      // threads 0: verified on the calling thread; 2: on codec workers (when the compiled worker exists).
      const err = (await extractImage({ source: dir, outDir: join(tmp, 'flip-out'), threads }).catch((e: unknown) => e)) as CorruptionError;
      expect(err).toBeInstanceOf(CorruptionError);
      expect(err.kind).toBe('chunk');
      expect(err.itemName).toBe(hex(chunk0().hash));
      expect(err.pack).toBe(pack0());
      expect(existsSync(join(tmp, 'flip-out'))).toBe(false);
    }
  });

  it('a flipped byte in the manifest', async () => {
    const dir = await damagedCopy('flip-manifest', async (d) => {
      const p = join(d, base.manifestName);
      const b = await readFile(p);
      b[b.length - 5] ^= 1;
      await writeFile(p, b);
    });
    const report = await verifyImage(dir);
    expect(report.ok).toBe(false);
    expect(report.imageError?.code).toBe('corrupt-manifest');
    const err = (await extractImage({ source: dir, outDir: join(tmp, 'fm-out') }).catch((e: unknown) => e)) as CorruptionError;
    expect(err.kind).toBe('manifest');
    expect(err.itemName).toBe(base.manifestName);
  });

  it('a truncated pack', async () => {
    const last = base.manifest.packs[base.manifest.packs.length - 1];
    const dir = await damagedCopy('trunc-pack', (d) => truncate(join(d, 'packs', last.name), last.sizeBytes - 100));
    const report = await verifyImage(dir);
    expect(report.damagedChunks.length).toBeGreaterThan(0);
    expect(report.damagedChunks.every((c) => c.pack === last.name && c.reason === 'pack-truncated')).toBe(true);
    const err = (await extractImage({ source: dir, outDir: join(tmp, 'tp-out') }).catch((e: unknown) => e)) as CorruptionError;
    expect(err.kind).toBe('pack-truncated');
    expect(err.itemName).toBe(`packs/${last.name}`);
  });

  it('a missing pack', async () => {
    const dir = await damagedCopy('missing-pack', (d) => rm(join(d, 'packs', pack0())));
    const report = await verifyImage(dir);
    expect(report.missingPacks).toEqual([pack0()]);
    expect(report.damagedChunks.filter((c) => c.reason === 'pack-missing').length).toBe(base.manifest.chunks.filter((c) => c.pack === 0).length);
    const err = (await extractImage({ source: dir, outDir: join(tmp, 'mp-out') }).catch((e: unknown) => e)) as CorruptionError;
    expect(err.kind).toBe('pack-missing');
  });

  it('a sound image verifies clean', async () => {
    const report = await verifyImage(join(tmp, 'base'));
    expect(report).toMatchObject({ ok: true, damagedChunks: [], damagedFiles: [], missingPacks: [] });
    expect(report.chunksChecked).toBe(base.manifest.chunks.length);
  });
});

describe('re-sequencing (trained stream order)', () => {
  it('writes the chunks in the given order and still extracts the same folder', async () => {
    const { repackImage } = await import('./repack.js');
    const n = base.manifest.chunks.length;
    const order = Array.from({ length: n }, (_, i) => n - 1 - i);
    const r = await repackImage({ source: join(tmp, 'base'), outDir: join(tmp, 'reversed'), order, profile: { points: [{ tMs: 0, needBytes: 1 }] }, packSizeBytes: SMALL_PACKS });
    expect(r.manifest.chunks.map((c) => hex(c.hash))).toEqual(order.map((ci) => hex(base.manifest.chunks[ci].hash)));
    expect(r.manifestName).not.toBe(base.manifestName);
    const out = join(tmp, 'reversed-out');
    await extractImage({ source: join(tmp, 'reversed'), outDir: out });
    expect(await describeTree(out)).toEqual(expected);
    await expect(repackImage({ source: join(tmp, 'base'), outDir: join(tmp, 'bad-order'), order: [0, 0] })).rejects.toBeInstanceOf(RangeError);
  });
});

describe('hostile images', () => {
  async function imageWith(name: string, files: Parameters<ImageWriter['finish']>[0]['files']): Promise<string> {
    const dir = join(tmp, name);
    const w = await ImageWriter.create(dir, SMALL_PACKS);
    await w.finish({ chunking: base.manifest.chunking, files });
    return dir;
  }
  const entry = { mode: 0o777, sizeBytes: 0, sha256: new Uint8Array(0), chunks: [] as number[] };

  it('refuses a chunk whose payload decodes to another length than the manifest says, on either thread', async () => {
    const dir = join(tmp, 'hostile-length');
    const data = new Rng(5).bytes(1000);
    const w = await ImageWriter.create(dir, SMALL_PACKS);
    const hash = createHash('sha256').update(data).digest();
    await w.append(hash, Codec.Zstd, 1010, zstdCompress(Buffer.concat([data, data]), 3)); // the frame says 2000
    await w.finish({ chunking: base.manifest.chunking, files: [{ ...entry, path: 'f', type: 'file', mode: 0o644, sizeBytes: 1010, sha256: hash, linkTarget: '', chunks: [0] }] });
    for (const threads of [0, 2]) {
      const err = (await extractImage({ source: dir, outDir: join(tmp, 'hostile-length-out'), threads }).catch((e: unknown) => e)) as CorruptionError;
      expect(err).toBeInstanceOf(CorruptionError);
      expect(err.kind).toBe('chunk');
      expect(err.itemName).toBe(hex(hash));
      expect(existsSync(join(tmp, 'hostile-length-out'))).toBe(false);
    }
  });

  it('refuses manifests whose symlinks or paths lead outside the target, writing nothing', async () => {
    const parent = join(tmp, 'hostile-parent');
    const chained = await imageWith('hostile-chain', [
      { ...entry, path: 'd/e/s', type: 'symlink', linkTarget: '../../q' },
      { ...entry, path: 'd/e/t', type: 'symlink', linkTarget: 's/../../..' },
    ]);
    const err = await extractImage({ source: chained, outDir: join(parent, 'out') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).code).toBe('format-unsafe-path');
    const dotdot = await imageWith('hostile-dotdot', [{ ...entry, path: '../escape', type: 'dir', linkTarget: '' }]);
    await expect(extractImage({ source: dotdot, outDir: join(parent, 'out') })).rejects.toBeInstanceOf(FormatError);
    expect(existsSync(parent)).toBe(false);
  });
});
