// Step 2 of an import (api.md §7.2 `mkraw`): tar → ROCKIT image in the depot, plus direct patches
// from each kept previous build. The server keeps images, never tars: previous builds are read
// from their images in the depot (cached locally in workDir).
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';

import {
  EngineError, IMAGE_JSON_NAME, PATCH_POINTER_NAME, LimitError, TarError, buildImage, makePatch, mapTracesToManifest, openImage, openImageSource, trainImage,
  type BuildResult, type InputLimits, type Trace,
} from '@rockit/engine';

import type { BlobStore } from '../storage/blob-store.js';
import { StepError, canceledError, storageStep, throwIfAborted, type FileReadFailed } from './errors.js';
import { dxfBuildPrefix, dxfNameFor, imagePrefix, joinKey, padBuildId, patchPrefix, patchTargetPrefix } from '../publish/layout.js';
import { downloadPrefix, openRead, uploadFolderExact } from './store-io.js';
import { IMAGE_CACHE_FOLDER, SCRATCH_PREFIX, holdWorkFolder } from './work-sweep.js';

/** A kept build to patch from: its id and the image variant the depot holds for it. */
export interface PreviousBuild {
  buildId: number;
  dxfName: string;
}

export interface MkrawProgress {
  phase: 'image' | 'upload' | 'patch';
  /** Overall fraction of the step in [0, 1]. */
  fraction: number;
}

/** A non-fatal problem, stored on the task's `warnings` (api.md §8). */
export interface StepWarning {
  code: 'patch-skipped' | 'patch-failed';
  message: string;
}

export interface MakeReleaseOptions {
  orgName: string;
  appName: string;
  buildId: number;
  buildName: string;
  /** Key of the verified tar in `blobStore` (dltar's result). */
  tarKey: string;
  /** The kept builds, newest first, at most maxBuilds-1; one direct patch is made from each. */
  previous: PreviousBuild[];
  /** The depot: holds the tar and receives the image and the patches. */
  blobStore: BlobStore;
  /** Prefix of the publication layout inside the depot ('' or e.g. 'cdn/'). */
  depotPrefix: string;
  /**
   * A local folder for scratch work and the image cache (`workDir/image-cache/…`). A persistent
   * workDir saves downloading previous images again on the next import of the app.
   */
  workDir: string;
  signal?: AbortSignal;
  onProgress?: (p: MkrawProgress) => void;
  /** Tar-bomb limits passed to the engine. */
  limits?: Partial<InputLimits>;
  /** Engine codec threads (default: all cores). */
  threads?: number;
  /**
   * The app's traces (any build): when some of them fall on the new build (by path and offset), the
   * image is streamed in the order they train (FastStart: a new build's first image is already
   * ordered by the app's training). None, or none that fall on the build: tar order.
   */
  traces?: readonly Trace[];
  /**
   * The tar's image, already built from the same bytes while they were uploaded (early-build.ts): used instead
   * of reading `tarKey` back and building it. The caller removes it afterwards.
   */
  prebuilt?: { imageDir: string; result: BuildResult };
}

export interface MakeReleaseResult {
  /** `b{buildId:04}-t000` for a freshly imported, untrained image. */
  dxfName: string;
  /** Stored size of the image folder (pointer, manifest and packs). */
  sizeBytes: number;
  /** Regular files of the build. */
  files: number;
  /** Distinct chunks of the image. */
  chunks: number;
  /** Sum of the build's file sizes. */
  rawBytes: number;
  /** The image folder relative to the layout root, and its manifest's file name. */
  image: { path: string; manifest: string };
  /** The patches made, newest source first. */
  patches: Array<{ fromBuildId: number; toBuildId: number; sizeBytes: number; path: string }>;
  warnings: StepWarning[];
  /** Traces that ordered the image (0: tar order). */
  orderedByTraces: number;
}

/**
 * Converts the tar at `tarKey` into the build's image and publishes it to the depot at
 * `{depotPrefix}dxf/{org}/{app}/{buildId:04}/{dxfName}/` (image.json last), then makes a direct patch
 * from each `previous` build's image to the new one and publishes it at
 * `{depotPrefix}pat/{org}/{app}/{buildId:04}/{from:04}/` (patch.json last).
 *
 * Idempotent: a second run for the same build rewrites the same folders so that each holds exactly
 * the new files (stale objects in them, and patch folders to this build from builds not in
 * `previous`, are deleted); local scratch folders are removed on success and on failure. A run that
 * fails after uploading leaves the build's depot folders for the retry to rewrite; they are never
 * deleted here, because a duplicate run may fail after an earlier run's release was published. An
 * import abandoned for good is cleared with `discardBuild`.
 *
 * `previous` must hold only builds older than `buildId` (TypeError otherwise).
 * A previous build whose image is missing from the depot, or from which no patch can be made, is
 * skipped with a warning (clients of that build then download the whole image) rather than failing
 * the import.
 *
 * Errors (StepError): `file-read-failed` with `fileReadFailed` when the engine refuses the tar (an
 * entry escaping the root, a truncated or corrupt archive, a tar-bomb limit); `storage-failed` when
 * the depot fails; `canceled`. Other engine failures propagate unchanged (internal errors).
 */
export async function makeRelease(options: MakeReleaseOptions): Promise<MakeReleaseResult> {
  const { orgName, appName, buildId, blobStore, depotPrefix, signal } = options;
  throwIfAborted(signal);
  const dxfName = dxfNameFor(buildId);
  const scratch = join(options.workDir, `${SCRATCH_PREFIX}${padBuildId(buildId)}-${randomBytes(6).toString('hex')}`);
  const cacheRoot = join(options.workDir, IMAGE_CACHE_FOLDER, orgName, appName);
  const imageDir = join(scratch, 'image');
  for (const p of options.previous) {
    if (!Number.isSafeInteger(p.buildId) || p.buildId < 1 || p.buildId >= buildId) {
      throw new TypeError(`makeRelease: previous build ${p.buildId} is not older than build ${buildId}`);
    }
  }
  const previous = options.previous;
  const patchWeight = previous.length === 0 ? 0 : 0.4;
  const report = (phase: MkrawProgress['phase'], fraction: number): void =>
    options.onProgress?.({ phase, fraction: Math.max(0, Math.min(1, fraction)) });

  // Held (from before the folder exists) so that a sweep of the work folder never removes them under us.
  const releaseScratch = holdWorkFolder(scratch);
  const releaseCache = holdWorkFolder(cacheRoot);
  try {
    await mkdir(scratch, { recursive: true });
    // 1. tar → image (streamed from the depot into the engine), unless it was built while the tar was uploaded.
    const builtDir = options.prebuilt?.imageDir ?? imageDir;
    const built = options.prebuilt?.result ?? (await buildFromStore(options, imageDir, (f) => report('image', f * (0.9 - patchWeight))));
    report('image', 0.9 - patchWeight);
    throwIfAborted(signal);
    const ordered = await orderByTraces(builtDir, join(scratch, 'ordered'), options.traces ?? []);
    const finalDir = ordered ? join(scratch, 'ordered') : builtDir;
    const manifestName = ordered ? ordered.manifestName : built.manifestName;
    throwIfAborted(signal);

    // 2. image → depot.
    const imgRel = imagePrefix(orgName, appName, buildId, dxfName);
    const uploaded = await storageStep('uploading the image to the depot failed', () =>
      uploadFolderExact(blobStore, finalDir, joinKey(depotPrefix, imgRel), { last: [IMAGE_JSON_NAME], signal }),
    );
    report('upload', 1 - patchWeight);

    // 3. direct patches previous → new.
    const warnings: StepWarning[] = [];
    const patches: MakeReleaseResult['patches'] = [];
    for (const [i, prev] of previous.entries()) {
      throwIfAborted(signal);
      const made = await patchFrom(options, prev, finalDir, join(scratch, `patch-${padBuildId(prev.buildId)}`), cacheRoot);
      if ('warning' in made) warnings.push(made.warning);
      else patches.push({ fromBuildId: prev.buildId, toBuildId: buildId, sizeBytes: made.sizeBytes, path: made.path });
      report('patch', 1 - patchWeight + (patchWeight * (i + 1)) / previous.length);
    }
    await storageStep('removing stale patches from the depot failed', () =>
      removeStalePatchFolders(blobStore, joinKey(depotPrefix, patchTargetPrefix(orgName, appName, buildId)), new Set(patches.map((p) => p.fromBuildId))),
    );

    // 4. Keep the new image as the cache entry the next import patches from. The cache only saves
    // downloads (entries are checked against the depot before use): failing to fill it is no failure.
    await keepInCache(finalDir, cacheRoot, { buildId, dxfName }, [{ buildId, dxfName }, ...previous]).catch(() => undefined);
    report('patch', 1);

    return {
      dxfName,
      sizeBytes: uploaded.sizeBytes,
      files: built.stats.files,
      chunks: built.stats.uniqueChunks,
      rawBytes: built.stats.rawBytes,
      image: { path: imgRel, manifest: manifestName },
      patches,
      warnings,
      orderedByTraces: ordered?.traces ?? 0,
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
    releaseScratch();
    releaseCache();
  }
}

/**
 * Re-sequences a freshly built image by the traces that fall on it (mapped by path and offset):
 * writes the ordered image to `outDir` and returns its manifest name, or null (nothing written)
 * when no trace reads anything of the build.
 */
async function orderByTraces(imageDir: string, outDir: string, traces: readonly Trace[]): Promise<{ manifestName: string; traces: number } | null> {
  if (traces.length === 0) return null;
  const src = openImageSource(imageDir);
  let usable: Trace[];
  try {
    const { manifest } = await openImage(src);
    usable = mapTracesToManifest(traces, manifest).traces.filter((t) => t.records.length > 0);
  } finally {
    await src.close();
  }
  if (usable.length === 0) return null;
  const trained = await trainImage({ source: imageDir, traces: usable, outDir });
  return { manifestName: trained.manifestName, traces: usable.length };
}

/**
 * Removes a build's image variants and the patches to it from the depot
 * (`dxf/{org}/{app}/{buildId:04}/`, `pat/{org}/{app}/{buildId:04}/`), e.g. after an import failed for
 * good. Only for a build that no release.json names (the caller checks). Returns objects deleted.
 */
export async function discardBuild(
  blobStore: BlobStore,
  depotPrefix: string,
  orgName: string,
  appName: string,
  buildId: number,
): Promise<number> {
  const a = await blobStore.deletePrefix(joinKey(depotPrefix, dxfBuildPrefix(orgName, appName, buildId)));
  const b = await blobStore.deletePrefix(joinKey(depotPrefix, patchTargetPrefix(orgName, appName, buildId)));
  return a + b;
}

async function buildFromStore(
  options: MakeReleaseOptions,
  outDir: string,
  progress: (fraction: number) => void,
): Promise<Awaited<ReturnType<typeof buildImage>>> {
  const { blobStore, tarKey, signal } = options;
  const head = await storageStep('reading the build from the depot failed', () => blobStore.head(tarKey));
  if (head === null) throw new StepError('storage-failed', 'the build tar is missing from the depot (was dltar run?)', { retryable: false });
  const body: Readable = await storageStep('reading the build from the depot failed', () => openRead(blobStore, tarKey));
  let readBytes = 0;
  let storageFailure: unknown;
  body.on('error', (err) => {
    storageFailure ??= err;
  });
  // Counts the tar bytes the engine has consumed (progress) without changing the flow of the stream.
  const counted = body.pipe(
    new PassThrough({
      transform(chunk: Buffer, _enc, cb) {
        readBytes += chunk.length;
        cb(null, chunk);
      },
    }),
  );
  body.on('error', (err) => counted.destroy(err));
  const onAbort = (): void => {
    body.destroy(canceledError(signal));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await buildImage({
      input: counted,
      outDir,
      syncPacks: true, // the depot stores the image durably: its packs reach the disk while the build runs

      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
      onProgress: () => progress(head.sizeBytes === 0 ? 1 : readBytes / head.sizeBytes),
    });
  } catch (err) {
    if (signal?.aborted) throw canceledError(signal);
    if (storageFailure !== undefined && !(storageFailure instanceof StepError)) {
      throw new StepError('storage-failed', 'reading the build from the depot failed', { cause: storageFailure });
    }
    throw engineTarError(err);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    body.destroy();
    counted.destroy();
  }
}

/** What the engine's tar refusal codes mean in `fileReadFailed` terms (api.md §8). */
const TAR_REFUSALS: Record<string, { expected: string; detected: string }> = {
  'absolute-path': { expected: 'relative path', detected: 'absolute path' },
  'path-escapes-root': { expected: 'path inside the game folder', detected: 'path escaping the game folder (..)' },
  'invalid-path': { expected: 'valid path', detected: 'invalid path' },
  'path-through-symlink': { expected: 'path without symlinked folders', detected: 'path through a symlink' },
  'symlink-escapes-root': { expected: 'symlink inside the game folder', detected: 'symlink pointing outside the game folder' },
  'hardlink-target-missing': { expected: 'hard link to an earlier entry', detected: 'hard link to a missing entry' },
  'duplicate-entry': { expected: 'unique entry', detected: 'duplicate entry' },
  'unsupported-entry-type': { expected: 'file, directory, symlink or hard link', detected: 'unsupported entry type' },
  truncated: { expected: 'complete tar', detected: 'truncated or not a tar' },
  'read-failed': { expected: 'tar', detected: 'unreadable data' },
};

/**
 * The engine's input limits in `fileReadFailed` terms (api.md §8): stable wording a client can match on
 * the prefix of, with the numbers filled in, and the setting that raises the limit.
 */
const BUILD_LIMITS: Record<string, { expected: string; detected: string; setting?: string }> = {
  maxTotalBytes: {
    expected: 'expanded build of at most {max} bytes',
    detected: 'expanded build larger than the limit (over {value} bytes so far)',
    setting: 'ROCKIT_MAX_BUILD_BYTES',
  },
  maxFiles: { expected: 'build of at most {max} entries', detected: 'build with more entries than the limit', setting: 'ROCKIT_MAX_BUILD_FILES' },
  maxPathLength: { expected: 'path of at most {max} bytes', detected: 'path of {value} bytes' },
};

/** Maps the engine's refusal of an input to `file-read-failed`; anything else is returned unchanged. */
export function engineTarError(err: unknown): unknown {
  if (err instanceof TarError) {
    const known = TAR_REFUSALS[err.code] ?? { expected: 'tar entry', detected: err.code };
    const detail: FileReadFailed = {
      filename: err.filename,
      typeExpected: err.typeExpected ?? known.expected,
      typeDetected: err.typeDetected ?? known.detected,
    };
    return new StepError('file-read-failed', `the build's tar was refused: ${err.message}`, { fileReadFailed: detail, cause: err });
  }
  if (err instanceof LimitError) {
    const known = BUILD_LIMITS[err.limit] ?? { expected: `${err.limit} ≤ ${err.max}`, detected: `${err.limit} ${err.value}` };
    return new StepError('file-read-failed', `the build exceeds a limit: ${err.message}${known.setting ? ` (${known.setting})` : ''}`, {
      fileReadFailed: { filename: err.entry ?? '', typeExpected: known.expected.replace('{max}', String(err.max)), typeDetected: known.detected.replace('{value}', String(err.value)) },
      cause: err,
    });
  }
  const zlibCode = (err as { code?: unknown } | null)?.code;
  if (typeof zlibCode === 'string' && zlibCode.startsWith('Z_')) {
    return new StepError('file-read-failed', 'the compressed tar is corrupt', {
      fileReadFailed: { filename: '', typeExpected: 'gzip-compressed tar', typeDetected: 'corrupt gzip data' },
      cause: err,
    });
  }
  return err;
}

type PatchOutcome = { sizeBytes: number; path: string } | { warning: StepWarning };

async function patchFrom(
  options: MakeReleaseOptions,
  prev: PreviousBuild,
  newImageDir: string,
  patchDir: string,
  cacheRoot: string,
): Promise<PatchOutcome> {
  const { orgName, appName, buildId, blobStore, depotPrefix, signal } = options;
  const from = padBuildId(prev.buildId);
  const prevDir = await cachedImage(options, prev, cacheRoot);
  if (prevDir === null) {
    return {
      warning: {
        code: 'patch-skipped',
        message: `no patch from build ${from}: its image ${prev.dxfName} is not in the depot`,
      },
    };
  }
  throwIfAborted(signal);
  try {
    await makePatch({ from: prevDir, to: newImageDir, outDir: patchDir });
  } catch (err) {
    if (!(err instanceof EngineError)) throw err;
    // A damaged cached copy must not poison the next import: drop it.
    await rm(prevDir, { recursive: true, force: true });
    return { warning: { code: 'patch-failed', message: `no patch from build ${from}: ${err.message}` } };
  }
  const rel = patchPrefix(orgName, appName, buildId, prev.buildId);
  const up = await storageStep('uploading a patch to the depot failed', () =>
    uploadFolderExact(blobStore, patchDir, joinKey(depotPrefix, rel), { last: [PATCH_POINTER_NAME], signal }),
  );
  return { sizeBytes: up.sizeBytes, path: rel };
}

/**
 * The local copy of a previous image, or null if the depot lacks it. The cache entry is used only
 * if its image.json equals the depot's (which names the manifest by its sha256): an app deleted and
 * created again reuses build ids and dxfNames, and a patch from a stale copy would not apply.
 */
async function cachedImage(options: MakeReleaseOptions, prev: PreviousBuild, cacheRoot: string): Promise<string | null> {
  const { orgName, appName, blobStore, depotPrefix, signal } = options;
  const dir = join(cacheRoot, padBuildId(prev.buildId), prev.dxfName);
  const prefix = joinKey(depotPrefix, imagePrefix(orgName, appName, prev.buildId, prev.dxfName));
  const pointer = await storageStep('reading a previous image from the depot failed', async () => {
    if ((await blobStore.head(prefix + IMAGE_JSON_NAME)) === null) return null;
    return readSmall(await openRead(blobStore, prefix + IMAGE_JSON_NAME));
  });
  if (pointer === null) {
    await rm(dir, { recursive: true, force: true });
    return null;
  }
  const cached = await readFile(join(dir, IMAGE_JSON_NAME)).catch(() => null);
  if (cached !== null && cached.equals(pointer)) return dir;
  await storageStep('reading a previous image from the depot failed', () => downloadPrefix(blobStore, prefix, dir, signal ? { signal } : {}));
  return dir;
}

/** Reads a small object whole (pointer files are a few hundred bytes; refuses more than 1 MiB). */
async function readSmall(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body) {
    size += (c as Buffer).length;
    if (size > 1 << 20) {
      body.destroy();
      throw new Error('pointer file larger than 1 MiB');
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Moves the new image into the cache and drops cache entries of builds no longer kept. */
async function keepInCache(imageDir: string, cacheRoot: string, current: PreviousBuild, kept: PreviousBuild[]): Promise<void> {
  const dest = join(cacheRoot, padBuildId(current.buildId), current.dxfName);
  await rm(dest, { recursive: true, force: true });
  await mkdir(join(cacheRoot, padBuildId(current.buildId)), { recursive: true });
  await rename(imageDir, dest);
  const keep = new Set(kept.map((k) => `${padBuildId(k.buildId)}/${k.dxfName}`));
  for (const build of await readdir(cacheRoot).catch(() => [] as string[])) {
    const variants = await readdir(join(cacheRoot, build)).catch(() => [] as string[]);
    for (const v of variants) if (!keep.has(`${build}/${v}`)) await rm(join(cacheRoot, build, v), { recursive: true, force: true });
    if ((await readdir(join(cacheRoot, build)).catch(() => [])).length === 0) await rm(join(cacheRoot, build), { recursive: true, force: true });
  }
}

/** Deletes patch folders under `targetPrefix` whose source build is not in `keep`. */
async function removeStalePatchFolders(store: BlobStore, targetPrefix: string, keep: Set<number>): Promise<void> {
  const stale = new Set<string>();
  for await (const obj of store.list(targetPrefix)) {
    const from = obj.key.slice(targetPrefix.length).split('/')[0];
    if (!keep.has(Number(from))) stale.add(`${targetPrefix}${from}/`);
  }
  for (const prefix of stale) await store.deletePrefix(prefix);
}

