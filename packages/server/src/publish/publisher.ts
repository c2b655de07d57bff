/**
 * Copies built files (images, patches) from the blob store to an origin, and publishes the
 * release pointer last, so a launcher that reads release.json always finds every file it names.
 *
 * Safe to run twice (handlers may): every copy overwrites the same key with the same bytes.
 */
import { IMAGE_JSON_NAME, PATCH_POINTER_NAME } from '@rockit/engine';

import type { BlobStore } from '../storage/blob-store.js';
import { StorageError } from '../storage/storage-error.js';
import type { Origin } from './origin.js';

export interface PublishOptions {
  /** Files copied at once (default 4). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called after each file is copied and verified. */
  onFile?: (destKey: string, sizeBytes: number) => void;
}

export interface PublishResult {
  files: number;
  bytes: number;
}

/** One folder of built files to publish: everything under `srcPrefix` goes under `destPrefix`. */
export interface PublishTree {
  src: BlobStore;
  srcPrefix: string;
  destPrefix: string;
}

function assertFolder(prefix: string, what: string): void {
  if (!prefix.endsWith('/') || prefix === '/') throw new StorageError('invalid-key', `${what} ${JSON.stringify(prefix)} must name a folder (end with "/")`);
}

/** Pointer files: at the root of a tree they name the tree's other files, so they are copied after them. */
const POINTER_FILES = new Set([IMAGE_JSON_NAME, PATCH_POINTER_NAME]);

/**
 * Runs `fn` over an async iterable with at most `limit` calls in flight. The first failure stops new
 * calls; the calls in flight are awaited, then that first failure is thrown.
 */
async function forEachLimited<T>(items: AsyncIterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.asyncIterator]();
  let failed = false;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    try {
      while (!failed) {
        const next = await iterator.next();
        if (next.done) return;
        await fn(next.value);
      }
    } catch (err) {
      if (!failed) {
        failed = true;
        failure = err;
      }
    }
  };
  // Pulls are serialized by the iterator protocol of async generators, so workers never share an item.
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (failed) {
    await iterator.return?.();
    throw failure;
  }
}

/**
 * Copies every object under `srcPrefix` of `src` to `destPrefix` of the origin, streamed, and
 * verifies each copy's size (from the put and from a fresh `head`). Both prefixes name folders
 * (end with `/`). Up to `concurrency` objects are copied at once, except the tree's pointer file
 * (`image.json` or `patch.json` directly under `srcPrefix`), copied only once every other object
 * is. On the first failure no new copy starts (so no pointer file is written) and that failure is
 * thrown once the copies in flight have settled. Throws `not-found` if there is nothing to publish,
 * `integrity` if a copy comes out with another size, and the origin's error (e.g. `access-denied`) otherwise.
 */
export async function publishTree(origin: Origin, src: BlobStore, srcPrefix: string, destPrefix: string, options: PublishOptions = {}): Promise<PublishResult> {
  assertFolder(srcPrefix, 'source prefix');
  assertFolder(destPrefix, 'destination prefix');
  let files = 0;
  let bytes = 0;
  const pointers: Array<{ key: string; sizeBytes: number }> = [];
  const copy = async ({ key, sizeBytes }: { key: string; sizeBytes: number }): Promise<void> => {
    if (options.signal?.aborted) throw new StorageError('aborted', 'publishing aborted');
    const destKey = destPrefix + key.slice(srcPrefix.length);
    const { body } = await src.get(key);
    const put = await origin.store.put(destKey, body, {
      expectedSizeBytes: sizeBytes,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const stored = await origin.store.head(destKey);
    if (!stored || stored.sizeBytes !== sizeBytes || put.sizeBytes !== sizeBytes) {
      throw new StorageError('integrity', `${origin.location}: ${destKey} has ${stored?.sizeBytes ?? 'no'} bytes after copying, expected ${sizeBytes}`);
    }
    files++;
    bytes += sizeBytes;
    options.onFile?.(destKey, sizeBytes);
  };
  await forEachLimited(src.list(srcPrefix), options.concurrency ?? 4, async (obj) => {
    if (POINTER_FILES.has(obj.key.slice(srcPrefix.length))) pointers.push(obj);
    else await copy(obj);
  });
  for (const obj of pointers) await copy(obj);
  if (files === 0) throw new StorageError('not-found', `nothing to publish under ${srcPrefix}`);
  return { files, bytes };
}

/** Writes a release document as JSON (one atomic put: readers see the old or the new one). */
export async function writeRelease(origin: Origin, key: string, release: unknown): Promise<void> {
  const body = Buffer.from(`${JSON.stringify(release, null, 2)}\n`, 'utf8');
  await origin.store.put(key, body, { contentType: 'application/json', expectedSizeBytes: body.length });
}

/**
 * Publishes every tree (in order), then — only if all succeeded — the release document at
 * `releaseKey`. A failure leaves the previous release.json in place, still pointing at files
 * that were not touched (a new release never overwrites an old release's folders).
 */
export async function writeReleaseLast(
  origin: Origin,
  input: { trees: PublishTree[]; releaseKey: string; release: unknown },
  options: PublishOptions = {},
): Promise<PublishResult> {
  const total: PublishResult = { files: 0, bytes: 0 };
  for (const tree of input.trees) {
    const r = await publishTree(origin, tree.src, tree.srcPrefix, tree.destPrefix, options);
    total.files += r.files;
    total.bytes += r.bytes;
  }
  await writeRelease(origin, input.releaseKey, input.release);
  return total;
}

/**
 * Removes a folder of published files (a superseded image or patch, a deleted app). Callers
 * apply the grace period (api.md §7.3) before calling this; here it is immediate.
 */
export async function removePrefix(origin: Origin, prefix: string): Promise<number> {
  assertFolder(prefix, 'prefix');
  return origin.store.deletePrefix(prefix);
}
