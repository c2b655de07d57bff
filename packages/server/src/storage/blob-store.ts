/**
 * The blob store: where the installation keeps uploads, images, patches and traces (the depot),
 * and what every origin writes through. One interface, two implementations (a folder and an
 * S3-compatible bucket) chosen at start-up; business code never asks which one it has except
 * through `describe().capabilities`.
 *
 * Keys are `/`-separated relative paths (`dxf/acme/demo/0003/b0003-t002/manifest.bin`). Every
 * method validates its key or prefix first and throws `StorageError('invalid-key')` for one that
 * could escape the store's root (see `assertValidKey`). All failures are `StorageError`s.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback, type Readable } from 'node:stream';
import { StorageError } from './storage-error.js';

/** Bytes `start..end`, both inclusive (HTTP Range semantics); no `end` means "to the last byte". */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface PutOptions {
  contentType?: string;
  /** When given, a body of another length fails with `integrity` and leaves no object behind. */
  expectedSizeBytes?: number;
  /** Lower-case hex; when given, a body with another digest fails with `integrity` and leaves no object behind. */
  expectedSha256?: string;
  signal?: AbortSignal;
  /**
   * Called as bytes reach the store (fs: written to the temporary file; S3: parts acknowledged),
   * with the running total. Not called for bytes merely read from `body`.
   */
  onProgress?: (bytesStored: number) => void;
}

export interface PutResult {
  sizeBytes: number;
  /** Lower-case hex sha256 of the stored bytes. */
  sha256: string;
}

export interface GetResult {
  /** The requested bytes, streamed. The caller must consume or destroy it. */
  body: Readable;
  /** Size of the whole object, not of the range. */
  sizeBytes: number;
  /** First byte of `body` within the object. */
  start: number;
  /** Last byte of `body` within the object (inclusive; `start - 1` for an empty object). */
  end: number;
}

export interface BlobListing {
  key: string;
  sizeBytes: number;
}

export interface BlobStoreDescription {
  kind: 'fs' | 's3';
  /** Where the store is, for logs and messages: `file:///…` or `s3://bucket/prefix @ endpoint`. Never secrets. */
  location: string;
  capabilities: {
    /**
     * Resumable multipart puts (`createMultipart` … `completeMultipart`) are supported. True on both
     * stores: S3 keeps the parts itself; the fs store writes them into one temporary file per upload.
     */
    multipartUpload: boolean;
    /**
     * Whether a key may also be a prefix of other keys (`a/b` and `a/b/c` together). True on S3;
     * false on the fs store, where `a/b` is a file and cannot be a folder too (`conflict`).
     */
    keyMayPrefixOtherKeys: boolean;
  };
}

/** One stored part of a multipart put (what `putPart` returns; keep it to complete the upload). */
export interface StoredPart {
  /** 1..10000, contiguous from 1 in `completeMultipart`. */
  partNumber: number;
  /** The store's tag for the part (S3 ETag; the fs store's own digest); opaque. */
  etag: string;
  sizeBytes: number;
}

/** Every part of a multipart put but the last must have at least this many bytes (S3's rule). */
export const MIN_MULTIPART_PART_BYTES = 5 * 1024 * 1024;
/** S3 accepts at most this many parts per upload. */
export const MAX_MULTIPART_PARTS = 10_000;

/** Throws `integrity` unless `partNumber` is an integer in 1..MAX_MULTIPART_PARTS. */
export function assertPartNumber(partNumber: number, key: string): void {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_MULTIPART_PARTS) {
    throw new StorageError('integrity', `${key}: part number ${partNumber} is not an integer in 1..${MAX_MULTIPART_PARTS}`);
  }
}

/**
 * Checks the shape of a `completeMultipart` list without asking the store: at least one part,
 * numbered 1..n in order, sizes non-negative integers, every part but the last at least
 * MIN_MULTIPART_PART_BYTES. Returns the object's size; throws `integrity` otherwise.
 */
export function checkPartList(parts: StoredPart[], key: string): number {
  if (!Array.isArray(parts) || parts.length === 0) throw new StorageError('integrity', `${key}: a multipart put needs at least one part`);
  let total = 0;
  parts.forEach((part, index) => {
    assertPartNumber(part.partNumber, key);
    if (part.partNumber !== index + 1) {
      throw new StorageError('integrity', `${key}: part ${part.partNumber} is at position ${index + 1} (parts must be numbered 1..n in order)`);
    }
    if (!Number.isSafeInteger(part.sizeBytes) || part.sizeBytes < 0) {
      throw new StorageError('integrity', `${key}: part ${part.partNumber} has an invalid size ${part.sizeBytes}`);
    }
    if (index < parts.length - 1 && part.sizeBytes < MIN_MULTIPART_PART_BYTES) {
      throw new StorageError('integrity', `${key}: part ${part.partNumber} holds ${part.sizeBytes} bytes; every part but the last needs ${MIN_MULTIPART_PART_BYTES}`);
    }
    total += part.sizeBytes;
  });
  return total;
}

export interface BlobStore {
  /**
   * Stores `body` under `key`, streamed (never buffered whole; S3 holds at most a few parts in
   * memory). Readers see either the old object or the new one, never a partial one. A body that
   * errors, an abort, or a failed expectation leaves no new object behind.
   */
  put(key: string, body: Readable | Buffer, options?: PutOptions): Promise<PutResult>;
  /**
   * Opens the object for reading, whole or a range. `not-found` if it does not exist;
   * `invalid-range` if `start` is past the last byte or `end < start`. An `end` past the last byte
   * is clamped (as HTTP does).
   */
  get(key: string, range?: ByteRange): Promise<GetResult>;
  /** The object's size, or null if it does not exist. */
  head(key: string): Promise<{ sizeBytes: number } | null>;
  /** Removes the object; removing a missing object is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Every object whose key starts with `prefix` (a plain string prefix: `a/b` matches `a/b/c` and
   * `a/bc`), in ascending key order, paginated underneath. `''` lists everything. The S3 store
   * relays the service's order (S3 itself sorts by UTF-8 bytes; the s3rver test server does not).
   */
  list(prefix: string): AsyncIterable<BlobListing>;
  /** Removes every object whose key starts with `prefix` (same matching as `list`); returns how many. */
  deletePrefix(prefix: string): Promise<number>;
  /**
   * Stores the local file at `path` under `key` (as `put` would, same visibility and failure
   * rules). A folder store on the same file system adds a hard link instead of copying: the file
   * must never be written in place afterwards (callers pass immutable files only: images, patches,
   * published copies); another store (or a link that fails) copies. Returns the stored size.
   */
  putFile(key: string, path: string, options?: { signal?: AbortSignal; expectedSizeBytes?: number }): Promise<{ sizeBytes: number }>;
  /**
   * The object's bytes as a local file, when the store keeps it as one (the folder store), for
   * `putFile` into another store; null for a store that has no local files (S3). Existence is
   * not checked.
   */
  localFile(key: string): string | null;
  /**
   * Starts a resumable multipart put of `key` and returns its upload id (an opaque string to
   * persist: another process may continue the upload with it). Nothing is visible under `key`
   * until `completeMultipart`. Parts live outside the key space (`list` never shows them).
   */
  createMultipart(key: string, options?: { contentType?: string }): Promise<string>;
  /**
   * Stores one part; durable when the promise resolves (fs: flushed to disk; S3: acknowledged).
   * `offset` is the sum of the sizes of parts 1..partNumber-1 (the fs store writes there; S3
   * ignores it). Every part but the last must hold at least MIN_MULTIPART_PART_BYTES. Storing a
   * part number again replaces it. `not-found` for an unknown, completed or aborted upload.
   */
  putPart(key: string, uploadId: string, part: { partNumber: number; offset: number; body: Buffer }): Promise<StoredPart>;
  /**
   * Makes the object visible under `key`: the given parts (numbered 1..n in order), concatenated;
   * other stored parts are dropped. `not-found` for an unknown upload; `integrity` when the list
   * is not 1..n or names a part that was not stored as given.
   */
  completeMultipart(key: string, uploadId: string, parts: StoredPart[]): Promise<{ sizeBytes: number }>;
  /**
   * The multipart uploads in progress (started, neither completed nor aborted), with when each
   * started: for sweeping those that nobody will finish. Order unspecified. A store (or test
   * server) that cannot list them fails with `io`.
   */
  listMultipart(): AsyncIterable<{ key: string; uploadId: string; startedMs: number }>;
  /** Drops the upload and its parts; an unknown, completed or aborted upload is not an error. */
  abortMultipart(key: string, uploadId: string): Promise<void>;
  describe(): BlobStoreDescription;
  /** Releases connections; the store must not be used afterwards. */
  close(): Promise<void>;
}

/** S3's own limit, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** Names starting with this are the fs store's temporary files: no key may use them. */
export const RESERVED_SEGMENT_PREFIX = '.rockit-tmp';

// Control characters and backslashes (a path separator on some systems) are never part of a key.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CHARS = /[\u0000-\u001f\u007f\\]/;

function checkSegments(value: string, segments: string[], what: string): void {
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw new StorageError('invalid-key', `${what} ${JSON.stringify(value)} has an empty, "." or ".." segment`);
    }
    if (segment.startsWith(RESERVED_SEGMENT_PREFIX)) {
      throw new StorageError('invalid-key', `${what} ${JSON.stringify(value)} uses the reserved name ${RESERVED_SEGMENT_PREFIX}`);
    }
  }
}

function checkCommon(value: string, what: string): void {
  if (typeof value !== 'string') throw new StorageError('invalid-key', `${what} must be a string`);
  if (Buffer.byteLength(value, 'utf8') > MAX_KEY_BYTES) {
    throw new StorageError('invalid-key', `${what} is longer than ${MAX_KEY_BYTES} bytes`);
  }
  if (FORBIDDEN_CHARS.test(value)) {
    throw new StorageError('invalid-key', `${what} ${JSON.stringify(value)} contains a control character or a backslash`);
  }
  if (value.startsWith('/')) throw new StorageError('invalid-key', `${what} ${JSON.stringify(value)} starts with "/"`);
}

/**
 * A key is a non-empty relative path: segments separated by single `/`, none empty, `.` or `..`,
 * none starting with `.rockit-tmp`, no control characters or backslashes, at most 1024 bytes.
 * Such a key, joined under any root, stays under that root.
 */
export function assertValidKey(key: string): void {
  checkCommon(key, 'key');
  if (key === '') throw new StorageError('invalid-key', 'key is empty');
  checkSegments(key, key.split('/'), 'key');
}

/**
 * A prefix is `''` or the beginning of a valid key: the same rules, except that it may end with
 * `/` and its last segment may be any beginning of a name (but not `.` or `..`).
 */
export function assertValidPrefix(prefix: string): void {
  checkCommon(prefix, 'prefix');
  if (prefix === '') return;
  const segments = prefix.split('/');
  if (segments[segments.length - 1] === '') segments.pop();
  checkSegments(prefix, segments, 'prefix');
}

/** Checks a range against an object size; returns the inclusive end after clamping. */
export function resolveRange(range: ByteRange | undefined, sizeBytes: number, key: string): { start: number; end: number } {
  if (!range) return { start: 0, end: sizeBytes - 1 };
  const { start } = range;
  const end = range.end === undefined ? sizeBytes - 1 : Math.min(range.end, sizeBytes - 1);
  if (!Number.isSafeInteger(start) || start < 0 || (range.end !== undefined && !Number.isSafeInteger(range.end))) {
    throw new StorageError('invalid-range', `range for ${key} must be non-negative integers`);
  }
  if (start >= sizeBytes || (range.end !== undefined && range.end < start)) {
    throw new StorageError('invalid-range', `range ${start}-${range.end ?? ''} is outside ${key} (${sizeBytes} bytes)`);
  }
  return { start, end };
}

/**
 * A pass-through stream that counts bytes and hashes them; `result()` is valid once the stream
 * has ended. Used by both stores so that `put` reports size and sha256 without a second read.
 */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private digest?: string;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.digest = this.hash.digest('hex');
    callback();
  }

  result(): PutResult {
    if (this.digest === undefined) throw new Error('HashingStream.result() called before the stream ended');
    return { sizeBytes: this.bytes, sha256: this.digest };
  }
}

/** Throws `integrity` when a put's result does not meet the caller's expectations. */
export function checkExpectations(result: PutResult, options: PutOptions | undefined, key: string): void {
  if (options?.expectedSizeBytes !== undefined && result.sizeBytes !== options.expectedSizeBytes) {
    throw new StorageError(
      'integrity',
      `${key}: received ${result.sizeBytes} bytes, expected ${options.expectedSizeBytes}`,
    );
  }
  if (options?.expectedSha256 !== undefined && result.sha256 !== options.expectedSha256.toLowerCase()) {
    throw new StorageError('integrity', `${key}: sha256 ${result.sha256} differs from the expected ${options.expectedSha256}`);
  }
}

/** Throws `integrity` when a local file handed to `putFile` does not have the expected size (checked before any write). */
export function checkFileSize(sizeBytes: number, expectedSizeBytes: number | undefined, key: string): void {
  if (expectedSizeBytes !== undefined && sizeBytes !== expectedSizeBytes) {
    throw new StorageError('integrity', `${key}: the file has ${sizeBytes} bytes, expected ${expectedSizeBytes}`);
  }
}
