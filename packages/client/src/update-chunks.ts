// Update by changed chunks (when the release offers no usable patch), resumable. Two steps:
//   1. download: the chunks of the new build B that the installed build A lacks go into a cache in the state
//      folder (`.rockit/update/`: update.json says for which build, chunks.bin which chunks arrived, data.bin
//      holds their raw bytes at fixed offsets). A killed run resumes it: only what did not arrive is fetched.
//   2. build + swap: B is built beside the folder from A's files and the cache (each chunk checked against its
//      SHA-256), verified, and swapped in by the engine's in-place protocol (the folder is A or B, never a mix).
//      A killed build is simply redone from the cache (nothing is downloaded again).
// The cache is removed once B is in place, or when the release moved on to another build.
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { lstat, mkdir, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { openImage, replaceInPlace, type KeptUserEntries, type Manifest } from '@rockit/engine';
import { ChunkStream, hasBit } from './chunk-stream.js';
import { ClientError, diskFullError, isDiskFull } from './errors.js';
import { buildRef } from './install.js';
import { checkBuildPaths, checkFiles, layOut } from './layout.js';
import type { RateLimiter } from './rate-limiter.js';
import { mapHttpError, type Release, type Remote } from './remote.js';
import { NEXT_MANIFEST_FILE, readChunks, readManifest, stateDir, writeChunks, writeManifest, writeState, type BuildRef, type InstallState } from './state.js';
import type { UpdateOptions } from './update.js';

/** The update cache, inside the state folder. */
export const UPDATE_DIR = 'update';
const UPDATE_JSON = `${UPDATE_DIR}/update.json`;
const UPDATE_CHUNKS = `${UPDATE_DIR}/chunks.bin`;
const UPDATE_DATA = `${UPDATE_DIR}/data.bin`;

/** update.json: the build the cache is for and how much it needs. */
export interface UpdateCacheInfo {
  format: 'rockit-update-cache';
  formatVersion: 1;
  to: BuildRef;
  /** A's manifest id: the needed chunks are those of `to` that this build lacks. */
  fromManifestId: string;
  /** Stored bytes and count of the chunks to download. */
  neededStoredBytes: number;
  neededChunks: number;
}

/** Progress of an interrupted update by chunks, for `status`; undefined when there is no cache. */
export async function readUpdateCache(dir: string): Promise<{ info: UpdateCacheInfo; downloadedStoredBytes: number } | undefined> {
  let info: UpdateCacheInfo;
  try {
    info = JSON.parse(await readFile(join(stateDir(dir), UPDATE_JSON), 'utf8')) as UpdateCacheInfo;
  } catch {
    return undefined;
  }
  if (info?.format !== 'rockit-update-cache' || typeof info.to?.manifestId !== 'string') return undefined;
  const b = await readManifest(dir, info.to.manifestId, NEXT_MANIFEST_FILE);
  const bits = b ? await readChunks(dir, info.to.manifestId, b.chunks.length, UPDATE_CHUNKS) : undefined;
  let downloadedStoredBytes = 0;
  if (b && bits) b.chunks.forEach((c, ci) => hasBit(bits, ci) && (downloadedStoredBytes += c.storedSizeBytes));
  return { info, downloadedStoredBytes };
}

export async function removeUpdateCache(dir: string): Promise<void> {
  await rm(join(stateDir(dir), UPDATE_DIR), { recursive: true, force: true });
}

/** Where each chunk of A lives: (file, offset) of its first occurrence, by hash. */
function chunkPlaces(a: Manifest): Map<string, { path: string; offset: number; size: number }> {
  const inA = new Map<string, { path: string; offset: number; size: number }>();
  for (const f of a.files) {
    if (f.type !== 'file') continue;
    let off = 0;
    for (const ci of f.chunks) {
      const c = a.chunks[ci];
      const key = Buffer.from(c.hash).toString('hex');
      if (!inA.has(key)) inA.set(key, { path: f.path, offset: off, size: c.rawSizeBytes });
      off += c.rawSizeBytes;
    }
  }
  return inA;
}

function readExactly(fd: number, size: number, at: number): Buffer | undefined {
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const n = readSync(fd, buf, got, size - got, at + got);
    if (n === 0) return undefined;
    got += n;
  }
  return buf;
}

/** B's manifest: the one the cache holds when it is for this release's image (no download), else from the image. */
async function nextManifest(dir: string, release: Release, remote: Remote): Promise<{ b: Manifest; id: string; manifestBytes: number }> {
  const cache = await readUpdateCache(dir);
  const t = cache?.info.to;
  if (t && t.buildId === release.buildId && t.dxfName === release.dxfName && t.imagePath === release.image.path) {
    const b = await readManifest(dir, t.manifestId, NEXT_MANIFEST_FILE);
    if (b) return { b, id: t.manifestId, manifestBytes: 0 };
  }
  await removeUpdateCache(dir);
  const img = await openImage(remote.source(release.image.path)).catch((e: unknown) => Promise.reject(mapHttpError(e)));
  checkBuildPaths(img.manifest);
  const id = await writeManifest(dir, img.manifest, NEXT_MANIFEST_FILE);
  return { b: img.manifest, id, manifestBytes: img.imageJson.manifest.sizeBytes };
}

/**
 * Updates `dir` from A to the release's build by chunks (see the file comment). Errors: ClientError
 * ('server-unavailable' when stopped or the network fails, 'disk-full', 'origin-corrupt'; all resumable).
 */
export async function updateByChunks(
  dir: string,
  state: InstallState,
  a: Manifest,
  release: Release,
  remote: Remote,
  limiter: RateLimiter,
  opts: UpdateOptions,
): Promise<{ build: BuildRef; downloadedBytes: number; kept: KeptUserEntries; resumedBytes: number }> {
  const { b, id, manifestBytes } = await nextManifest(dir, release, remote);
  const next = buildRef(release, b, id);
  const n = b.chunks.length;
  const inA = chunkPlaces(a);
  const needed = new Uint8Array(Math.ceil(n / 8));
  let neededStoredBytes = 0;
  let neededChunks = 0;
  b.chunks.forEach((c, ci) => {
    if (inA.has(Buffer.from(c.hash).toString('hex'))) return;
    needed[ci >> 3] |= 1 << (ci & 7);
    neededStoredBytes += c.storedSizeBytes;
    neededChunks++;
  });
  await mkdir(join(stateDir(dir), UPDATE_DIR), { recursive: true });
  const info: UpdateCacheInfo = { format: 'rockit-update-cache', formatVersion: 1, to: next, fromManifestId: state.build.manifestId, neededStoredBytes, neededChunks };
  await writeFile(join(stateDir(dir), UPDATE_JSON), JSON.stringify(info, null, 2) + '\n');
  state.updating = next;
  await writeState(dir, state);

  const arrived = (await readChunks(dir, id, n, UPDATE_CHUNKS)) ?? new Uint8Array(needed.length);
  for (let k = 0; k < arrived.length; k++) arrived[k] &= needed[k];
  let resumedBytes = 0;
  b.chunks.forEach((c, ci) => hasBit(arrived, ci) && (resumedBytes += c.storedSizeBytes));
  // Chunk ci's raw bytes sit at rawAt[ci] of data.bin (a sparse file: only the needed chunks are written).
  const rawAt = new Float64Array(n + 1);
  for (let ci = 0; ci < n; ci++) rawAt[ci + 1] = rawAt[ci] + b.chunks[ci].rawSizeBytes;
  await checkUpdateSpace(dir, b, arrived, needed);

  const dataPath = join(stateDir(dir), UPDATE_DATA);
  let fetched = await download(dir, { b, id, needed, arrived, rawAt, dataPath, remote, limiter, opts, release });
  let kept: KeptUserEntries | undefined;
  // A chunk of A or of the cache that does not check out while building B is fetched again (once).
  for (let round = 0; !kept; round++) {
    const bad: number[] = [];
    const r = await replaceInPlace({
      dir,
      baseManifest: a,
      toManifestId: id,
      build: async (staging) => {
        await buildFromCache(dir, staging, b, inA, needed, rawAt, dataPath, bad);
        if (bad.length > 0) throw new ClientError('origin-corrupt', `${bad.length} chunks need fetching again`, true);
        const problems = await checkFiles(staging, b);
        if (problems.length > 0) throw new ClientError('origin-corrupt', `the new build does not verify: ${problems.map((p) => p.path).join(', ')}`, true);
        await syncTree(staging, b);
      },
    }).catch((err: unknown) => {
      if (bad.length > 0 && round === 0) return undefined;
      throw isDiskFull(err) ? diskFullError(dir, b.files.reduce((s, f) => s + (f.type === 'file' ? f.sizeBytes : 0), 0)) : err;
    });
    if (r) kept = r.kept;
    else {
      for (const ci of bad) {
        needed[ci >> 3] |= 1 << (ci & 7);
        arrived[ci >> 3] &= ~(1 << (ci & 7));
      }
      fetched += await download(dir, { b, id, needed, arrived, rawAt, dataPath, remote, limiter, opts, release });
    }
  }
  return { build: next, downloadedBytes: manifestBytes + fetched, kept, resumedBytes };
}

async function checkUpdateSpace(dir: string, b: Manifest, arrived: Uint8Array, needed: Uint8Array): Promise<void> {
  let cacheLeft = 0;
  b.chunks.forEach((c, ci) => hasBit(needed, ci) && !hasBit(arrived, ci) && (cacheLeft += c.rawSizeBytes));
  let raw = 0;
  for (const f of b.files) if (f.type === 'file') raw += f.sizeBytes;
  const need = cacheLeft + raw; // the rest of the cache, then B built beside the folder
  const s = await statfs(dir).catch(() => undefined);
  if (s && s.bavail * s.bsize < need) throw diskFullError(dir, need - s.bavail * s.bsize, s.bavail * s.bsize);
}

interface DownloadJob {
  b: Manifest;
  id: string;
  needed: Uint8Array;
  arrived: Uint8Array;
  rawAt: Float64Array;
  dataPath: string;
  remote: Remote;
  limiter: RateLimiter;
  opts: UpdateOptions;
  release: Release;
}

/** Step 1: fetches the needed chunks that have not arrived into the cache; returns the stored bytes fetched. */
async function download(dir: string, j: DownloadJob): Promise<number> {
  const { b, needed, arrived } = j;
  const n = b.chunks.length;
  // The stream skips every chunk that is not needed or has arrived.
  const present = new Uint8Array(needed.length);
  for (let k = 0; k < present.length; k++) present[k] = ~needed[k] | arrived[k];
  const pad = n & 7;
  if (pad) present[present.length - 1] |= 0xff << pad;
  let fd: number;
  try {
    fd = openSync(j.dataPath, 'r+');
  } catch {
    fd = openSync(j.dataPath, 'w+');
  }
  const stream = new ChunkStream({
    dir,
    manifest: b,
    source: j.remote.source(j.release.image.path),
    present,
    save: (bits) => writeChunks(dir, j.id, n, bits.map((x, k) => x & needed[k]), UPDATE_CHUNKS),
    beforeRead: () => j.remote.freshen(),
    limiter: j.limiter,
    sink: (ci, raw) => {
      let w = 0;
      while (w < raw.length) w += writeSync(fd, raw, w, raw.length - w, j.rawAt[ci] + w);
    },
  });
  const onAbort = () => stream.stop();
  j.opts.signal?.addEventListener('abort', onAbort, { once: true });
  const started = performance.now();
  // Progress counts the needed chunks only (those B shares with A are not downloaded).
  let neededBytes = 0;
  b.chunks.forEach((c, ci) => hasBit(needed, ci) && (neededBytes += c.storedSizeBytes));
  const skipped = stream.totalStoredBytes - neededBytes;
  stream.onChunk = () => {
    const secs = (performance.now() - started) / 1000;
    const rate = secs > 0 ? stream.fetchedBytes / secs : 0;
    const done = stream.presentStoredBytes - skipped;
    j.opts.onEvent?.({ phase: 'update', bytes: done, total: neededBytes, rate: Math.round(rate), eta: rate > 0 ? Math.round((neededBytes - done) / rate) : null, ready: false });
  };
  try {
    if (!stream.complete) await stream.run();
  } finally {
    j.opts.signal?.removeEventListener('abort', onAbort);
    closeSync(fd);
  }
  for (let k = 0; k < arrived.length; k++) arrived[k] = present[k] & needed[k];
  if (!stream.complete) throw new ClientError('server-unavailable', 'the update stopped before its download was complete (run update again: it resumes)', true);
  return stream.fetchedBytes;
}

/** Step 2: lays B out in `staging` and writes every chunk from A's files or the cache, each checked against its hash. */
async function buildFromCache(
  dir: string,
  staging: string,
  b: Manifest,
  inA: Map<string, { path: string; offset: number; size: number }>,
  needed: Uint8Array,
  rawAt: Float64Array,
  dataPath: string,
  bad: number[],
): Promise<void> {
  await layOut(staging, b);
  const present = new Uint8Array(Math.ceil(b.chunks.length / 8));
  const out = new ChunkStream({ dir: staging, manifest: b, source: undefined as never, present, save: async () => undefined });
  const fds = new Map<string, number>();
  const fdOf = (path: string): number | undefined => {
    let fd = fds.get(path);
    if (fd === undefined) {
      try {
        fd = openSync(path, 'r');
      } catch {
        return undefined;
      }
      fds.set(path, fd);
    }
    return fd;
  };
  try {
    b.chunks.forEach((c, ci) => {
      const at = hasBit(needed, ci) ? undefined : inA.get(Buffer.from(c.hash).toString('hex'));
      const fd = at ? fdOf(join(dir, at.path)) : fdOf(dataPath);
      const buf = fd === undefined ? undefined : readExactly(fd, c.rawSizeBytes, at ? at.offset : rawAt[ci]);
      if (buf && createHash('sha256').update(buf).digest().equals(c.hash)) out.put(ci, buf);
      else bad.push(ci);
    });
  } finally {
    for (const fd of fds.values()) closeSync(fd);
    out.closeFiles();
  }
}

/** fsync of every regular file and folder of the build (the in-place protocol wants B durable before the swap). */
async function syncTree(root: string, m: Manifest): Promise<void> {
  const folders = new Set<string>(['']);
  for (const f of m.files) {
    if (f.type === 'file') fsyncPath(join(root, f.path));
    if (f.type === 'dir') folders.add(f.path);
  }
  for (const d of [...folders].sort((x, y) => y.length - x.length)) {
    if ((await lstat(join(root, d)).catch(() => undefined))?.isDirectory()) fsyncPath(join(root, d));
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
