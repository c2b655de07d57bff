/**
 * A blob store in a local folder: key `a/b/c` is the file `<root>/a/b/c`.
 *
 * Invariants:
 * - a put writes `<dir>/.rockit-tmp-<random>` in the target's own folder, flushes it to disk and
 *   renames it over the target, so readers see the old bytes or the new ones, never a mix; a
 *   failed put removes its temporary file;
 * - keys are validated (`assertValidKey`) before any path is built, so no key reaches outside the
 *   root; symbolic links inside the root are ignored by `list` and never followed by `list` or `deletePrefix`;
 * - folders are an implementation detail: created on put, removed when a delete empties them
 *   (the root itself stays);
 * - a multipart upload is the folder `<root>/.rockit-tmp-multipart/<uploadId>` (outside the key
 *   space: reserved name) holding `key` (the key it is for), `data` (the object being assembled:
 *   each part written at its offset) and one empty file `part.<n>.<offset>.<size>.<sha256>` per
 *   stored part. A part record exists only while `data` holds those bytes there: `putPart` drops
 *   the records of the part it replaces and of every part its range overlaps before writing.
 *   `completeMultipart` checks the given list against the records, truncates `data` and renames it
 *   onto the key (the commit point; without `data` the upload is gone), then removes the folder.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, open, readdir, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import {
  assertValidKey,
  assertValidPrefix,
  checkExpectations,
  checkFileSize,
  HashingStream,
  RESERVED_SEGMENT_PREFIX,
  resolveRange,
  type BlobListing,
  type BlobStore,
  type BlobStoreDescription,
  type ByteRange,
  type GetResult,
  type PutOptions,
  type PutResult,
  type StoredPart,
} from './blob-store.js';
import { errnoCode, fileSink, FsDisk, mapFsError, MKDIR_RETRIES } from './fs-io.js';
import { FsMultipartUploads } from './fs-multipart.js';
import { StorageError } from './storage-error.js';

export interface FsBlobStoreOptions {
  /** Absolute path of the store's folder; created on first write. */
  root: string;
  /** Flush each object to disk before it becomes visible (default true; tests may turn it off). */
  fsync?: boolean;
}

export class FsBlobStore implements BlobStore {
  private readonly root: string;
  private readonly fsync: boolean;
  private readonly disk: FsDisk;
  private readonly uploads: FsMultipartUploads;

  constructor(options: FsBlobStoreOptions) {
    if (!isAbsolute(options.root)) {
      throw new StorageError('invalid-config', 'the folder of a file blob store must be an absolute path');
    }
    this.root = resolve(options.root);
    this.fsync = options.fsync ?? true;
    this.disk = new FsDisk(this.root, this.fsync);
    this.uploads = new FsMultipartUploads(this.disk, (key) => this.pathOf(key));
  }

  private pathOf(key: string): string {
    return join(this.root, ...key.split('/'));
  }

  async put(key: string, body: Readable | Buffer, options?: PutOptions): Promise<PutResult> {
    assertValidKey(key);
    const target = this.pathOf(key);
    const dir = dirname(target);
    const tmp = join(dir, `${RESERVED_SEGMENT_PREFIX}-${randomBytes(8).toString('hex')}`);
    let handle: FileHandle | undefined;
    try {
      for (let attempt = 0; ; attempt++) {
        await this.disk.ensureDir(dir, key);
        try {
          handle = await open(tmp, 'wx');
          break;
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT' || attempt >= MKDIR_RETRIES) throw err;
        }
      }
      const hasher = new HashingStream();
      const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
      await pipeline(source, hasher, fileSink(handle, options?.onProgress), { signal: options?.signal });
      if (this.fsync) await handle.sync();
      await handle.close();
      handle = undefined;
      const result = hasher.result();
      checkExpectations(result, options, key);
      await rename(tmp, target);
      return result;
    } catch (err) {
      if (!Buffer.isBuffer(body) && !body.destroyed) body.destroy();
      await handle?.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
      throw mapFsError(err, 'put', key);
    }
  }

  async get(key: string, range?: ByteRange): Promise<GetResult> {
    assertValidKey(key);
    let handle: FileHandle;
    try {
      handle = await open(this.pathOf(key), 'r');
    } catch (err) {
      if (errnoCode(err) === 'ENOTDIR') throw new StorageError('not-found', `get ${key}: no such object`);
      throw mapFsError(err, 'get', key);
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new StorageError('not-found', `get ${key}: no such object`);
      const { start, end } = resolveRange(range, info.size, key);
      if (end < start) {
        await handle.close();
        return { body: Readable.from([]), sizeBytes: info.size, start, end };
      }
      return { body: handle.createReadStream({ start, end }), sizeBytes: info.size, start, end };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw mapFsError(err, 'get', key);
    }
  }

  async head(key: string): Promise<{ sizeBytes: number } | null> {
    assertValidKey(key);
    try {
      const info = await stat(this.pathOf(key));
      return info.isFile() ? { sizeBytes: info.size } : null;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw mapFsError(err, 'head', key);
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (err) {
      const code = errnoCode(err);
      // A folder or a missing path is "no object with that key", which delete accepts.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return;
      throw mapFsError(err, 'delete', key);
    }
    await this.pruneEmptyDirs(dirname(path));
  }

  /** Removes `dir` and its parents while they are empty, stopping at the root. */
  private async pruneEmptyDirs(dir: string): Promise<void> {
    while (dir.startsWith(this.root + sep)) {
      try {
        await rmdir(dir);
      } catch {
        return;
      }
      dir = dirname(dir);
    }
  }

  async *list(prefix: string): AsyncIterable<BlobListing> {
    assertValidPrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const baseKey = prefix.slice(0, slash + 1);
    yield* this.walk(baseKey, prefix);
  }

  /**
   * Yields files under the folder of `baseKey` (`''` or ending in `/`) whose keys start with
   * `prefix`, in ascending key order: sorting siblings by `name` for files and `name + '/'` for
   * folders orders whole subtrees exactly as their keys sort.
   */
  private async *walk(baseKey: string, prefix: string): AsyncIterable<BlobListing> {
    const dir = baseKey === '' ? this.root : this.pathOf(baseKey.slice(0, -1));
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw mapFsError(err, 'list', prefix);
    }
    const items = entries
      .filter((e) => !e.name.startsWith(RESERVED_SEGMENT_PREFIX) && (e.isFile() || e.isDirectory()))
      .map((e) => ({ sortKey: e.isDirectory() ? `${e.name}/` : e.name, name: e.name, isDir: e.isDirectory() }))
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    for (const item of items) {
      const key = baseKey + item.name;
      if (item.isDir) {
        const childBase = `${key}/`;
        if (childBase.startsWith(prefix) || prefix.startsWith(childBase)) yield* this.walk(childBase, prefix);
      } else if (key.startsWith(prefix)) {
        try {
          const info = await stat(this.pathOf(key));
          if (info.isFile()) yield { key, sizeBytes: info.size };
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') throw mapFsError(err, 'list', prefix);
        }
      }
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    assertValidPrefix(prefix);
    let count = 0;
    const dirs = new Set<string>();
    for await (const { key } of this.list(prefix)) {
      const path = this.pathOf(key);
      try {
        await unlink(path);
        count++;
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw mapFsError(err, 'delete', key);
      }
      dirs.add(dirname(path));
    }
    // Deepest first, so a parent is tried after its children are gone.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) await this.pruneEmptyDirs(dir);
    return count;
  }

  /**
   * Hard-links `path` into place (a temporary name, then a rename over the target, so readers
   * never see a partial object); copies through `put` when linking is impossible (another file
   * system, a store that refuses links).
   */
  async putFile(key: string, path: string, options?: { signal?: AbortSignal; expectedSizeBytes?: number }): Promise<{ sizeBytes: number }> {
    assertValidKey(key);
    const target = this.pathOf(key);
    const dir = dirname(target);
    const tmp = join(dir, `${RESERVED_SEGMENT_PREFIX}-${randomBytes(8).toString('hex')}`);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (err) {
      throw mapFsError(err, 'putFile', key);
    }
    checkFileSize(size, options?.expectedSizeBytes, key);
    try {
      if (options?.signal?.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
      await this.disk.ensureDir(dir, key);
      await link(path, tmp);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EXDEV' || code === 'EPERM' || code === 'ENOTSUP' || code === 'EMLINK' || code === 'EOPNOTSUPP') {
        const { sizeBytes } = await this.put(key, createReadStream(path, { highWaterMark: 1024 * 1024 }), {
          ...(options?.signal ? { signal: options.signal } : {}), expectedSizeBytes: size,
        });
        return { sizeBytes };
      }
      throw mapFsError(err, 'putFile', key);
    }
    try {
      if (this.fsync) {
        // The bytes may never have been flushed by whoever wrote them.
        const handle = await open(tmp, 'r');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      await rename(tmp, target);
      await this.disk.syncDir(dir);
      return { sizeBytes: size };
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw mapFsError(err, 'putFile', key);
    }
  }

  localFile(key: string): string {
    assertValidKey(key);
    return this.pathOf(key);
  }

  /** The upload id is 32 lower-case hex digits; the content type is not kept (as with `put`). */
  createMultipart(key: string, options?: { contentType?: string }): Promise<string> {
    return this.uploads.createMultipart(key, options);
  }

  /** The part's etag is the sha256 hex of its bytes. A bad `offset` is `integrity`. */
  putPart(key: string, uploadId: string, part: { partNumber: number; offset: number; body: Buffer }): Promise<StoredPart> {
    return this.uploads.putPart(key, uploadId, part);
  }

  completeMultipart(key: string, uploadId: string, parts: StoredPart[]): Promise<{ sizeBytes: number }> {
    return this.uploads.completeMultipart(key, uploadId, parts);
  }

  /** Folders of `.rockit-tmp-multipart` that still hold their `data` file; started = the `key` file's time. */
  listMultipart(): AsyncIterable<{ key: string; uploadId: string; startedMs: number }> {
    return this.uploads.listMultipart();
  }

  abortMultipart(key: string, uploadId: string): Promise<void> {
    return this.uploads.abortMultipart(key, uploadId);
  }

  describe(): BlobStoreDescription {
    return {
      kind: 'fs',
      location: pathToFileURL(this.root).href,
      capabilities: { multipartUpload: true, keyMayPrefixOtherKeys: false },
    };
  }

  async close(): Promise<void> {}
}

export function createFsBlobStore(options: FsBlobStoreOptions): FsBlobStore {
  return new FsBlobStore(options);
}
