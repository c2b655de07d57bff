/**
 * The one error type of blob stores and origins. Callers branch on `code`, never on `message`.
 *
 * Invariant: `message` never contains a secret (no access key secret, no signed URL, no
 * credentials of any kind) and names objects by store location + key, so it may be shown to the
 * organization that owns the store (e.g. in a failed deploy task) and logged as is.
 */
export type StorageErrorCode =
  /** The object (or the bucket / root folder) does not exist. */
  | 'not-found'
  /** The store refused the credentials or the operation (HTTP 401/403, EACCES/EPERM/EROFS). */
  | 'access-denied'
  /** The store could not be reached (DNS, connection refused, TLS, timeout). */
  | 'unreachable'
  /** A key or prefix that is empty, escapes the root or uses reserved names. */
  | 'invalid-key'
  /** A range outside the object. */
  | 'invalid-range'
  /** Settings that cannot describe a store (bad URL, endpoint with a path, missing bucket...). */
  | 'invalid-config'
  /** Written bytes differ from what the caller expected (size or sha256), or a copy came out different. */
  | 'integrity'
  /** The key cannot be stored because another key occupies its path (fs: `a/b` is a file, `a/b/c` wanted). */
  | 'conflict'
  /** The caller aborted the operation. */
  | 'aborted'
  /** Anything else: a disk error, an unexpected answer from the S3 service. */
  | 'io';

export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;
  /** HTTP status of the S3 answer, when there was one. */
  readonly httpStatus?: number;

  constructor(code: StorageErrorCode, message: string, options: { httpStatus?: number } = {}) {
    super(message);
    this.code = code;
    if (options.httpStatus !== undefined) this.httpStatus = options.httpStatus;
  }
}

export function isStorageError(err: unknown, code?: StorageErrorCode): err is StorageError {
  return err instanceof StorageError && (code === undefined || err.code === code);
}
