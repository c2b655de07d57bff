import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { AppError } from '../domain/errors.js';
import type { BlobStore, ByteRange } from '../storage/blob-store.js';
import { isStorageError } from '../storage/storage-error.js';

/** What GET/HEAD /cdn/{path} answers (api.md §9.2). */
export interface DepotObject {
  sizeBytes: number;
  /** Strong validator: the content's SHA-256 for pointer documents (`.json`, small, rewritten in place); for content-addressed files, key and size. */
  etag: string;
  contentType: string;
}

export interface DepotRead extends DepotObject {
  body: Readable;
  /** Inclusive byte range of `body` within the object. */
  start: number;
  end: number;
}

/** Pointer documents are read whole to hash them; anything larger is not a pointer. */
const POINTER_MAX_BYTES = 1 << 20;

/**
 * Reads published files from the depot (the installation's blob store under the depot prefix),
 * served at /cdn/*. No credentials yet: download keys (api.md §9.2) are a later issue.
 * Errors: not-found for a missing object or an invalid path (never revealing which);
 * `RangeNotSatisfiable` for a range outside the object.
 */
export class DepotService {
  constructor(private readonly depot: BlobStore) {}

  async head(path: string): Promise<DepotObject> {
    const key = checkPath(path);
    // A blob store may refuse a key synchronously (invalid-key): the same 404 as a rejected promise.
    const head = await Promise.resolve().then(() => this.depot.head(key)).catch((e) => rethrow(e, path));
    if (head === null) throw notFoundPath(path);
    return { sizeBytes: head.sizeBytes, etag: await this.etag(key, head.sizeBytes), contentType: contentTypeOf(key) };
  }

  async read(path: string, range?: ByteRange): Promise<DepotRead> {
    const meta = await this.head(path);
    if (range && (range.start >= meta.sizeBytes || (range.end !== undefined && range.end < range.start))) {
      throw new RangeNotSatisfiable(meta.sizeBytes);
    }
    const got = await Promise.resolve().then(() => this.depot.get(checkPath(path), range)).catch((e) => {
      if (isStorageError(e) && e.code === 'invalid-range') throw new RangeNotSatisfiable(meta.sizeBytes);
      return rethrow(e, path);
    });
    return { ...meta, sizeBytes: got.sizeBytes, body: got.body, start: got.start, end: got.end };
  }

  private async etag(key: string, sizeBytes: number): Promise<string> {
    const h = createHash('sha256');
    if (key.endsWith('.json') && sizeBytes <= POINTER_MAX_BYTES) {
      const { body } = await this.depot.get(key);
      for await (const c of body) h.update(c as Buffer);
    } else {
      h.update(`${key}\n${sizeBytes}`);
    }
    return `"${h.digest('hex').slice(0, 32)}"`;
  }
}

/** The requested range lies outside the object (HTTP 416 with `Content-Range: bytes *\/size`). */
export class RangeNotSatisfiable extends Error {
  constructor(readonly sizeBytes: number) {
    super(`the range is outside the object (${sizeBytes} bytes)`);
    this.name = 'RangeNotSatisfiable';
  }
}

const notFoundPath = (path: string): AppError => new AppError('not-found', `/cdn/${path} not found`);

function checkPath(path: string): string {
  // Only the published layout is served (dxf/…, pat/…); nothing else of the blob store.
  // Control characters and backslashes are in no published name; refused before the blob store sees them.
  if (!/^(dxf|pat)\/[^?#\\]+$/.test(path) || hasControlCharacter(path) || path.split('/').some((s) => s === '' || s === '.' || s === '..' || s.startsWith('.'))) {
    throw notFoundPath(path);
  }
  return path;
}

const hasControlCharacter = (s: string): boolean => [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

function rethrow(e: unknown, path: string): never {
  if (isStorageError(e) && (e.code === 'not-found' || e.code === 'invalid-key')) throw notFoundPath(path);
  throw e;
}

function contentTypeOf(key: string): string {
  return key.endsWith('.json') ? 'application/json' : 'application/octet-stream';
}
