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
    /** Large puts go up in parts (S3 multipart); the fs store streams into a temporary file instead. */
    multipartUpload: boolean;
    /**
     * Whether a key may also be a prefix of other keys (`a/b` and `a/b/c` together). True on S3;
     * false on the fs store, where `a/b` is a file and cannot be a folder too (`conflict`).
     */
    keyMayPrefixOtherKeys: boolean;
  };
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
