// Updating an installed build to the current release. Prefers the patch from the installed build (B's
// manifest travels inside it as a delta against the manifest kept in the state folder, so the base manifest is
// never downloaded); falls back to the chunks of the new image that the installed build lacks when no patch
// exists, when the image path is smaller, or when the patch does not fit the installed files. Both paths are
// crash-safe (the engine's in-place protocol: the folder is A or B, never a mix) and keep the player's files.
import { mkdir, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  CorruptionError,
  PatchError,
  applyPatchInPlace,
  openImage,
  parseImageJson,
  readPatchBase,
  readPatchTarget,
  recoverInPlace,
  IMAGE_JSON_NAME,
  PATCH_POINTER_NAME,
  type HttpImageSource,
  type InPlaceStep,
  type KeptUserEntries,
  type Manifest,
} from '@rockit/engine';
import { removeUpdateCache, updateByChunks } from './update-chunks.js';
import { ClientError, asClientError } from './errors.js';
import type { EventSink } from './events.js';
import { openInstall, runInstall, buildRef, type InstallResult } from './install.js';
import { checkBuildPaths, hashFile } from './layout.js';
import { RateLimiter } from './rate-limiter.js';
import { Remote, mapHttpError, type Release } from './remote.js';
import { MANIFEST_FILE, NEXT_MANIFEST_FILE, PATCH_DIR, lockFolder, readManifest, readState, stateDir, writeManifest, writeState, type BuildRef, type InstallState, type Lock } from './state.js';
import type { HttpImageSourceOptions } from '@rockit/engine';

export interface UpdateOptions {
  dir: string;
  /** Overrides the key kept in the state (a renewed key). */
  key?: string;
  limitRateBytesPerSecond?: number;
  onEvent?: EventSink;
  signal?: AbortSignal;
  /** For an install that was not complete: stop at *ready to play*. */
  untilReady?: boolean;
  measureMs?: number;
  http?: HttpImageSourceOptions;
  /** Never use a patch (tests, or a launcher that knows better). */
  noPatch?: boolean;
}

export interface UpdateResult {
  /** 'resumed': an unfinished install was continued; 'retrained': same build, new stream order (no file changes). */
  outcome: 'up-to-date' | 'patched' | 'chunks' | 'resumed' | 'retrained';
  from?: BuildRef;
  build: BuildRef;
  /** Bytes downloaded for the update (patch parts, or chunks + B's manifest). */
  downloadedBytes: number;
  /** Why the patch was not used, when a patch existed. */
  fallback?: string;
  kept?: KeptUserEntries;
  install?: InstallResult;
  /** Update by chunks: stored bytes an interrupted earlier run had already downloaded (not fetched again). */
  resumedBytes?: number;
}

const PATCH_POINTER_MAX_BYTES = 1024 * 1024;
const PART_READ_BYTES = 8 * 1024 * 1024;

/**
 * Brings `dir` to the current release (see the file comment). Errors: ClientError ('not-installed', 'locked',
 * 'key-required', 'key-rejected', 'server-unavailable', 'disk-full', ...). A failed or killed update leaves the
 * installed build in place and is resumed or redone by the next run.
 */
export async function update(opts: UpdateOptions): Promise<UpdateResult> {
  await recoverMissingFolder(opts.dir);
  const lock = await lockFolder(opts.dir);
  try {
    return await updateLocked(opts, lock);
  } catch (err) {
    throw asClientError(err);
  } finally {
    await lock.release();
  }
}

async function updateLocked(opts: UpdateOptions, lock: Lock): Promise<UpdateResult> {
  const dir = opts.dir;
  let state = await readState(dir);
  if (!state) throw new ClientError('not-installed', `${dir} holds no install (no ${join(stateDir(dir), 'install.json')})`);
  if (state.phase === 'installing') {
    const inst = await openInstall({ server: state.server, orgName: state.orgName, appName: state.appName, dir, key: opts.key, limitRateBytesPerSecond: opts.limitRateBytesPerSecond, http: opts.http }, lock);
    try {
      const r = await runInstall(inst, opts);
      return { outcome: 'resumed', build: r.build, downloadedBytes: r.fetchedBytes, install: r };
    } finally {
      await inst.close(); // its decode workers; the lock is ours and released by update()
    }
  }
  ({ state } = await settleInterrupted(dir, state));
  const a = await readManifest(dir, state.build.manifestId);
  if (!a) throw new ClientError('not-installed', `the installed build's manifest is missing from ${stateDir(dir)}: run verify --repair or reinstall`);
  if (opts.key !== undefined) state.key = opts.key;
  if (opts.limitRateBytesPerSecond !== undefined) state.limitRateBytesPerSecond = opts.limitRateBytesPerSecond;
  const remote = new Remote({ server: state.server, orgName: state.orgName, appName: state.appName, key: state.key, http: opts.http });
  const release = await remote.release();
  const from = state.build;
  if (release.buildId === from.buildId) {
    if (release.dxfName === from.dxfName) return { outcome: 'up-to-date', build: from, downloadedBytes: 0 };
    // Retrained: same files, another stream order. Keep the new image's manifest for later repairs.
    const img = await openImage(remote.source(release.image.path)).catch((e: unknown) => Promise.reject(mapHttpError(e)));
    const id = await writeManifest(dir, img.manifest);
    state.build = buildRef(release, img.manifest, id);
    await writeState(dir, state);
    return { outcome: 'retrained', from, build: state.build, downloadedBytes: img.imageJson.manifest.sizeBytes };
  }
  const limiter = new RateLimiter(state.limitRateBytesPerSecond);
  const patch = opts.noPatch ? undefined : release.patches.find((p) => p.fromBuildId === from.buildId);
  let fallback: string | undefined = patch ? undefined : `no patch from build ${from.buildId}`;
  if (patch) {
    const src = remote.source(patch.path);
    const got = await tryPatch(dir, state, a, release, src, remote, limiter, opts);
    if (typeof got !== 'string') return { ...got, from };
    fallback = got;
  }
  // On failure `updating` stays set: the next update, status or verify settles which build the folder holds
  // (A, or B when the swap had begun), and the download cache (.rockit/update/) keeps what arrived.
  const r = await updateByChunks(dir, state, a, release, remote, limiter, opts);
  await commitNext(dir, state, r.build);
  return { outcome: 'chunks', build: r.build, downloadedBytes: r.downloadedBytes, kept: r.kept, from, fallback, ...(r.resumedBytes > 0 ? { resumedBytes: r.resumedBytes } : {}) };
}

/**
 * A kill between the two renames of the swap leaves no folder at all (it is `<dir>.rockit-old`, B is
 * `<dir>.rockit-new`): roll forward before anything (taking the lock would create an empty folder).
 */
export async function recoverMissingFolder(dir: string): Promise<void> {
  const missing = !(await stat(dir).catch(() => undefined));
  if (missing && (await stat(`${resolve(dir)}.rockit-journal`).catch(() => undefined))) await recoverInPlace(dir);
}

/**
 * After a killed or failed update: recovers the in-place swap (the folder becomes exactly A or exactly B),
 * then records which build the folder really holds. Returns the settled state and what happened. The caller
 * holds the folder's lock.
 */
export async function settleInterrupted(dir: string, state: InstallState): Promise<{ state: InstallState; settled?: 'kept' | 'finished' }> {
  const recovery = await recoverInPlace(dir);
  const next = state.updating;
  if (!next) return recovery === 'clean' ? { state } : { state, settled: 'kept' };
  const a = await readManifest(dir, state.build.manifestId);
  const b = await readManifest(dir, next.manifestId, NEXT_MANIFEST_FILE);
  let settled: 'kept' | 'finished' = 'kept';
  if (a && b && (await holdsB(dir, a, b))) {
    await rename(join(stateDir(dir), NEXT_MANIFEST_FILE), join(stateDir(dir), MANIFEST_FILE));
    state.build = next;
    settled = 'finished';
  }
  delete state.updating;
  await writeState(dir, state);
  if (settled === 'finished') {
    await removeUpdateCache(dir);
    await rm(join(stateDir(dir), PATCH_DIR), { recursive: true, force: true });
  }
  return { state, settled };
}

/** Whether the folder (recovered, so exactly A or B) holds B: looks at the first paths where A and B differ. */
async function holdsB(dir: string, a: Manifest, b: Manifest): Promise<boolean> {
  const inA = new Map(a.files.map((f) => [f.path, f]));
  for (const f of b.files) {
    if (f.type !== 'file') continue;
    const af = inA.get(f.path);
    if (af?.type === 'file' && af.sizeBytes === f.sizeBytes && Buffer.from(af.sha256).equals(f.sha256)) continue;
    const st = await stat(join(dir, f.path)).catch(() => undefined);
    if (!st) return false;
    if (st.size !== f.sizeBytes) return false;
    if (!af || af.type !== 'file' || af.sizeBytes !== f.sizeBytes) return true;
    const h = await hashFile(join(dir, f.path));
    return h !== undefined && h.equals(f.sha256);
  }
  const inB = new Set(b.files.map((f) => f.path));
  for (const f of a.files) if (f.type === 'file' && !inB.has(f.path)) return !(await stat(join(dir, f.path)).catch(() => undefined));
  return true;
}

/** Downloads one file of a folder into `to`, resuming a partial download; returns the bytes fetched. */
async function downloadPart(src: HttpImageSource, name: string, sizeBytes: number, to: string, limiter: RateLimiter, remote: Remote, signal?: AbortSignal): Promise<number> {
  const have = await stat(to).then((s) => s.size, () => 0);
  if (have > sizeBytes) await rm(to, { force: true });
  const fh = await open(to, have > sizeBytes ? 'w' : 'a');
  let fetched = 0;
  try {
    for (let off = have > sizeBytes ? 0 : have; off < sizeBytes; ) {
      signal?.throwIfAborted();
      const len = Math.min(PART_READ_BYTES, sizeBytes - off);
      await limiter.take(len, signal);
      await remote.freshen();
      const bytes = await src.readRange(name, off, len);
      await fh.write(bytes);
      off += len;
      fetched += len;
    }
  } finally {
    await fh.close();
  }
  return fetched;
}

async function sha256File(path: string): Promise<string | undefined> {
  return (await hashFile(path))?.toString('hex');
}

/** Returns the result, or the reason to fall back to chunks. */
async function tryPatch(
  dir: string,
  state: InstallState,
  a: Manifest,
  release: Release,
  src: HttpImageSource,
  remote: Remote,
  limiter: RateLimiter,
  opts: UpdateOptions,
): Promise<UpdateResult | string> {
  let pointer: any;
  try {
    pointer = JSON.parse(Buffer.from(await src.readFile(PATCH_POINTER_NAME, PATCH_POINTER_MAX_BYTES)).toString('utf8'));
  } catch (err) {
    if (err instanceof CorruptionError || err instanceof SyntaxError) return `the patch is not readable (${(err as Error).message})`;
    throw mapHttpError(err);
  }
  // A patch made from another variant of the installed build (a FastStart-trained image: same files, another
  // stream order, so another manifest id) applies to the same files: its base manifest part says which.
  const allParts: any[] = Array.isArray(pointer?.parts) ? pointer.parts : [];
  const basePart = pointer?.from?.manifestId !== state.build.manifestId ? allParts.find((p: any) => p?.role === 'baseManifest') : undefined;
  if (pointer?.from?.manifestId !== state.build.manifestId && !basePart) return 'the patch is for another base build';
  const parts = allParts.filter((p: any) => p?.role === 'manifest' || p?.role === 'data');
  const patchBytes = parts.reduce((s: number, p: any) => s + (Number(p.sizeBytes) || 0), 0) + (basePart ? Number(basePart.sizeBytes) || 0 : 0);
  // Whichever is smaller, decided without downloading any manifest: the chunk path costs B's manifest (size in
  // B's image.json) plus the new chunks, estimated from the patch's own stats (raw bytes of the chunks A lacks)
  // at the image's stored/raw ratio.
  const imageSrc = remote.source(release.image.path);
  const imageJson = parseImageJson(await imageSrc.readFile(IMAGE_JSON_NAME, 64 * 1024).catch((e: unknown) => Promise.reject(mapHttpError(e))));
  const newRaw = Number(pointer.stats?.newRawBytes);
  if (Number.isFinite(newRaw) && newRaw >= 0 && imageJson.rawBytes > 0) {
    const chunkBytes = imageJson.manifest.sizeBytes + Math.round((newRaw * imageJson.storedBytes) / imageJson.rawBytes);
    if (chunkBytes < patchBytes) return `the new image's changed chunks (about ${chunkBytes} bytes) are smaller than the patch (${patchBytes} bytes)`;
  }
  const pdir = join(stateDir(dir), PATCH_DIR);
  await mkdir(pdir, { recursive: true });
  let downloaded = 0;
  let done = 0;
  let base = a;
  if (basePart) {
    const got = await variantBase(src, basePart, pdir, a, String(pointer.from.manifestId), limiter, remote, opts.signal);
    if (typeof got === 'string') return got;
    base = got.manifest;
    downloaded += got.downloaded;
  }
  const started = performance.now();
  for (const p of parts) {
    if (typeof p.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(p.name)) return 'the patch pointer names a bad part';
    const to = join(pdir, p.name);
    downloaded += await downloadPart(src, p.name, p.sizeBytes, to, limiter, remote, opts.signal);
    if ((await sha256File(to)) !== p.sha256) {
      await rm(to, { force: true });
      throw new ClientError('origin-corrupt', `patch part ${p.name} does not match its SHA-256 (run again to fetch it again)`, true);
    }
    done += p.sizeBytes;
    const secs = (performance.now() - started) / 1000;
    opts.onEvent?.({ phase: 'patch', bytes: done, total: patchBytes, rate: secs > 0 ? Math.round(downloaded / secs) : 0, eta: null, ready: true });
  }
  await writeFile(join(pdir, PATCH_POINTER_NAME), JSON.stringify(pointer));
  let b: Manifest;
  try {
    b = await readPatchTarget(pdir, base);
  } catch (err) {
    if (err instanceof PatchError) return `the patch does not fit the installed build (${err.message})`;
    throw err;
  }
  checkBuildPaths(b);
  const next: BuildRef = buildRef(release, b, pointer.to.manifestId);
  await writeManifest(dir, b, NEXT_MANIFEST_FILE);
  state.updating = next;
  await writeState(dir, state);
  let kept: KeptUserEntries;
  try {
    const r = await applyPatchInPlace({
      patch: pdir,
      dir,
      fromManifest: base,
      // Test hook (e2e tests of kill -9 inside the swap): SIGKILL of this process at that step of the protocol.
      ...(process.env.ROCKIT_TEST_CRASH_AT ? { failAt: process.env.ROCKIT_TEST_CRASH_AT as InPlaceStep } : {}),
      onProgress: (p) => opts.onEvent?.({ phase: 'update', bytes: p.doneBytes, total: p.totalBytes, rate: 0, eta: null, ready: false }),
    });
    kept = r.kept;
  } catch (err) {
    delete state.updating;
    await writeState(dir, state);
    if (err instanceof PatchError) return `the patch does not fit the installed files (${err.message})`;
    throw err;
  }
  await commitNext(dir, state, next);
  await rm(pdir, { recursive: true, force: true });
  return { outcome: 'patched', build: next, downloadedBytes: downloaded, kept };
}

/**
 * The base manifest of a patch made from another variant of the installed build: downloaded, checked against the
 * patch's base id, and used only when it describes exactly the installed build's files (paths, types, modes, sizes,
 * contents, link targets); otherwise the reason to fall back to chunks.
 */
async function variantBase(
  src: HttpImageSource,
  part: any,
  pdir: string,
  a: Manifest,
  baseId: string,
  limiter: RateLimiter,
  remote: Remote,
  signal?: AbortSignal,
): Promise<{ manifest: Manifest; downloaded: number } | string> {
  if (typeof part.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(part.name) || !Number.isSafeInteger(part.sizeBytes) || part.sizeBytes < 0) {
    return 'the patch pointer names a bad part';
  }
  const to = join(pdir, part.name);
  const downloaded = await downloadPart(src, part.name, part.sizeBytes, to, limiter, remote, signal);
  if ((await sha256File(to)) !== part.sha256) {
    await rm(to, { force: true });
    throw new ClientError('origin-corrupt', `patch part ${part.name} does not match its SHA-256 (run again to fetch it again)`, true);
  }
  let m: Manifest;
  try {
    m = await readPatchBase(to, baseId);
  } catch (err) {
    if (err instanceof PatchError) return `the patch's base manifest is not readable (${err.message})`;
    throw err;
  }
  return sameFiles(a, m) ? { manifest: m, downloaded } : 'the patch is for another base build';
}

/** Whether two manifests describe the same folder (entry for entry), whatever their chunk order. */
function sameFiles(a: Manifest, b: Manifest): boolean {
  if (a.files.length !== b.files.length) return false;
  const inB = new Map(b.files.map((f) => [f.path, f]));
  return a.files.every((f) => {
    const g = inB.get(f.path);
    return g !== undefined && g.type === f.type && g.mode === f.mode && g.sizeBytes === f.sizeBytes && g.linkTarget === f.linkTarget && Buffer.from(g.sha256).equals(f.sha256);
  });
}

/** The folder now holds `next`: make the state say so. */
async function commitNext(dir: string, state: InstallState, next: BuildRef): Promise<void> {
  await rename(join(stateDir(dir), NEXT_MANIFEST_FILE), join(stateDir(dir), MANIFEST_FILE));
  state.build = next;
  delete state.updating;
  state.phase = 'installed';
  await writeState(dir, state);
  await removeUpdateCache(dir);
}
