// Small streaming helpers between blob stores and local folders, shared by the pipeline steps.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { canceledError, throwIfAborted } from './errors.js';
import type { BlobStore } from '../storage/blob-store.js';

/** Objects copied at once by the pipeline's copies (overlaps the stores' per-object fsync and round trips). */
export const COPY_CONCURRENCY = 4;

/** Opens a whole object as a stream (StorageError `not-found` when missing). */
export async function openRead(store: BlobStore, key: string): Promise<Readable> {
  const local = store.localFile(key);
  if (local !== null) {
    // A folder store's file, read in 1 MiB steps (the store's own streams use small reads, fit
    // for many concurrent range requests; the pipeline reads gigabytes, one stream at a time).
    // Opened before returning, so a missing object fails here as `get` would.
    const handle = await open(local, 'r').catch(() => null);
    if (handle !== null) {
      if ((await handle.stat()).isFile()) return handle.createReadStream({ highWaterMark: LOCAL_READ_BYTES });
      await handle.close();
    }
  }
  return (await store.get(key)).body;
}

/** Read size for pipeline reads of local files. */
const LOCAL_READ_BYTES = 1024 * 1024;

/** Deletes an object, ignoring every failure (best-effort cleanup after another error). */
export async function deleteQuietly(store: BlobStore, key: string): Promise<void> {
  try {
    await store.delete(key);
  } catch {
    // The original failure is what the caller reports.
  }
}

/** One file of a local folder, with its '/'-separated path relative to the folder. */
export interface LocalFile {
  relPath: string;
  absPath: string;
  sizeBytes: number;
}

/** Every regular file under `root`, sorted by relative path (deterministic upload order). */
export async function listLocalFiles(root: string): Promise<LocalFile[]> {
  const out: LocalFile[] = [];
  async function walk(dir: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      const abs = join(dir, e.name);
      if (e.isDirectory()) await walk(abs);
      else if (e.isFile()) {
        const st = await stat(abs);
        out.push({ relPath: relative(root, abs).split(sep).join('/'), absPath: abs, sizeBytes: st.size });
      }
    }
  }
  await walk(root);
  return out.sort((a, b) => (a.relPath < b.relPath ? -1 : a.relPath > b.relPath ? 1 : 0));
}

/**
 * Downloads every object under `prefix` into `destDir` (keys relative to the prefix become paths),
 * up to `concurrency` objects at once (default COPY_CONCURRENCY).
 * Writes into a unique `destDir + '.partial-…'` folder and renames at the end, so `destDir` exists only complete;
 * on any failure (the first one is thrown, after the downloads in flight have settled) the partial folder is removed.
 * Keys that would escape the folder are refused (nothing is downloaded then). Returns the number of files and bytes.
 */
export async function downloadPrefix(
  store: BlobStore,
  prefix: string,
  destDir: string,
  options: { signal?: AbortSignal; concurrency?: number } = {},
): Promise<{ files: number; sizeBytes: number }> {
  const { signal } = options;
  const partial = `${destDir}.partial-${randomBytes(6).toString('hex')}`;
  await mkdir(partial, { recursive: true });
  try {
    const objects: Array<{ key: string; rel: string; sizeBytes: number }> = [];
    for await (const obj of store.list(prefix)) {
      throwIfAborted(signal);
      const rel = obj.key.slice(prefix.length);
      if (rel === '' || rel.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) {
        throw new Error(`refusing object key outside its folder: ${obj.key}`);
      }
      objects.push({ key: obj.key, rel, sizeBytes: obj.sizeBytes });
    }
    await forEachLimited(objects, options.concurrency ?? COPY_CONCURRENCY, async (obj) => {
      throwIfAborted(signal);
      const dest = join(partial, ...obj.rel.split('/'));
      await mkdir(dirname(dest), { recursive: true });
      await pipeline(await openRead(store, obj.key), createWriteStream(dest), { signal });
    });
    await rm(destDir, { recursive: true, force: true });
    await mkdir(dirname(destDir), { recursive: true });
    await rename(partial, destDir);
    return { files: objects.length, sizeBytes: objects.reduce((sum, o) => sum + o.sizeBytes, 0) };
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}

/**
 * Uploads a local folder to `prefix` so that the store's folder holds exactly the local files:
 * every file is written, up to `concurrency` at once (default COPY_CONCURRENCY), then the names
 * listed in `last` one by one in that order — pointer files that must never name a missing file:
 * they are written only once every other file is stored. Then objects under the prefix that are
 * not local files are deleted. On the first failure (or abort) no new put starts, the puts in
 * flight settle, nothing of `last` is written and the first error is thrown (the store's error,
 * or `canceled`). Idempotent. Returns the files and total bytes uploaded.
 */
export async function uploadFolderExact(
  store: BlobStore,
  localDir: string,
  prefix: string,
  options: { last?: string[]; signal?: AbortSignal; concurrency?: number } = {},
): Promise<{ files: number; sizeBytes: number }> {
  const { signal } = options;
  const local = await listLocalFiles(localDir);
  const last = options.last ?? [];
  const others = local.filter((f) => !last.includes(f.relPath));
  const pointers = last.flatMap((name) => local.filter((f) => f.relPath === name));
  const putFile = async (f: LocalFile, copy = false): Promise<void> => {
    throwIfAborted(signal);
    const opts = { expectedSizeBytes: f.sizeBytes, ...(signal ? { signal } : {}) };
    try {
      // Content-addressed files (packs, manifests, patch data) are finished and never written
      // again: a folder store on the same file system links them rather than copying. Pointer
      // files are copied, so the stored one never shares bytes with a local working copy.
      if (copy) await store.put(prefix + f.relPath, createReadStream(f.absPath), opts);
      else await store.putFile(prefix + f.relPath, f.absPath, opts);
    } catch (err) {
      // A put interrupted by the signal reports the cancellation, not a storage failure.
      if (signal?.aborted) throw canceledError(signal);
      throw err;
    }
  };
  await forEachLimited(others, options.concurrency ?? COPY_CONCURRENCY, (f) => putFile(f));
  for (const f of pointers) await putFile(f, true);
  const wanted = new Set(local.map((f) => prefix + f.relPath));
  const stale: string[] = [];
  for await (const obj of store.list(prefix)) if (!wanted.has(obj.key)) stale.push(obj.key);
  for (const key of stale) await store.delete(key);
  return { files: local.length, sizeBytes: local.reduce((sum, f) => sum + f.sizeBytes, 0) };
}

/**
 * Runs `fn` over `items` with at most `limit` (at least 1) calls in flight. The first failure stops
 * new calls; the calls in flight are awaited, then that first failure is thrown — so nothing started
 * here is still running when this returns or throws.
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        if (!failed) {
          failed = true;
          failure = err;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw failure;
}
