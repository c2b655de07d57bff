// The one error type of the import pipeline (dltar → mkraw → deploy). A queue handler stores
// `toTaskError()` on the task (api.md §8 `error`) and may copy the detail fields into a webhook
// event (api.md §11: `httpDownloadFailed`, `fileReadFailed`, `deployment`).

/**
 * Stable machine codes of pipeline failures. Tests and handlers branch on these, never on messages.
 * - `download-failed`: the tar could not be fetched (see `httpStatus` / `exitCode`).
 * - `too-large`: the tar is larger than the configured limit (`sizeBytesActual` ≥ the limit, `exitCode` 63).
 * - `size-mismatch` / `sha256-mismatch`: the tar is not the announced one.
 * - `upload-missing`: no uploaded object at the upload key (the client never finished its PUT).
 * - `not-a-tar`: the bytes are neither a tar nor a gzip/zstd-compressed one (`fileReadFailed`).
 * - `file-read-failed`: the engine refused the tar (an entry escaping the root, a corrupt archive, a limit).
 * - `storage-failed`: the installation's own blob store failed (retryable).
 * - `deploy-failed`: an origin refused the publication (`deployment` names it).
 * - `canceled`: the step's AbortSignal fired.
 * - `not-a-delta`: a delta import's upload is not a valid delta (bad magic, version or format, checksum).
 * - `unknown-chunk`: a delta references a chunk the app's kept builds no longer hold (push the whole tar).
 */
export type StepErrorCode =
  | 'download-failed'
  | 'too-large'
  | 'size-mismatch'
  | 'sha256-mismatch'
  | 'upload-missing'
  | 'not-a-tar'
  | 'file-read-failed'
  | 'storage-failed'
  | 'deploy-failed'
  | 'canceled'
  | 'not-a-delta'
  | 'unknown-chunk';

/**
 * curl-compatible exit codes for download failures (api.md §8 `exitCode`), so operators used to the
 * original service, whose downloader was curl, read them the same way. Only these values are produced.
 */
export const DownloadExitCode = {
  /** The URL's scheme is not http, https or s3. */
  UnsupportedProtocol: 1,
  /** The URL is malformed, or carries credentials (use a pre-signed URL instead). */
  UrlMalformed: 3,
  /** The host name could not be resolved (DNS). */
  CouldNotResolveHost: 6,
  /** The TCP connection was refused, the host is unreachable, or its address is not allowed (private network). */
  CouldNotConnect: 7,
  /** The body ended before the announced Content-Length. */
  PartialFile: 18,
  /** The server answered with an HTTP status ≥ 400 (`httpStatus` holds it). */
  HttpError: 22,
  /** Connecting or receiving timed out. */
  Timeout: 28,
  /** TLS handshake failed (certificate, protocol). */
  SslConnectError: 35,
  /** The connection broke while receiving the body (reset, closed without a length to compare). */
  RecvError: 56,
  /** The body exceeds the configured maximum size. */
  FileSizeExceeded: 63,
} as const;
export type DownloadExitCode = (typeof DownloadExitCode)[keyof typeof DownloadExitCode];

/** mkraw's documented detail (api.md §8): which entry of the tar could not be read, and why. */
export interface FileReadFailed {
  /** The entry's name inside the tar; '' when the failure is about the archive as a whole. */
  filename: string;
  /** What was expected, e.g. 'tar', 'path inside the game root'. */
  typeExpected: string;
  /** What was found, e.g. 'unknown', 'absolute path', 'symlink pointing outside'. */
  typeDetected: string;
}

/** The documented detail fields of a failed step (api.md §8); absent fields do not apply. */
interface StepErrorFields {
  httpStatus?: number;
  exitCode?: number;
  sizeBytesActual?: number;
  sizeBytesExpected?: number;
  sha256Actual?: string;
  sha256Expected?: string;
  fileReadFailed?: FileReadFailed;
  deployment?: string;
}

/** The JSON stored in a task's `error` field (api.md §8). Absent fields do not apply. */
export interface TaskError extends StepErrorFields {
  code: StepErrorCode;
  message: string;
  /** Whether running the step again may succeed without anyone changing anything (network, storage). */
  retryable: boolean;
}

export interface StepErrorDetails extends StepErrorFields {
  /** Overrides the default retryability of the code (see `defaultRetryable`). */
  retryable?: boolean;
  cause?: unknown;
}

const RETRYABLE_BY_DEFAULT: ReadonlySet<StepErrorCode> = new Set(['storage-failed', 'deploy-failed']);

/**
 * A failed pipeline step. The message is for people and never contains secrets (credentials,
 * signed URLs' query strings); the fields are for machines. `cause` is kept for logs only and is
 * never part of `toTaskError()`.
 */
export class StepError extends Error {
  override readonly name = 'StepError';
  readonly code: StepErrorCode;
  readonly httpStatus?: number;
  readonly exitCode?: number;
  readonly sizeBytesActual?: number;
  readonly sizeBytesExpected?: number;
  readonly sha256Actual?: string;
  readonly sha256Expected?: string;
  readonly fileReadFailed?: FileReadFailed;
  readonly deployment?: string;
  readonly retryable: boolean;

  constructor(code: StepErrorCode, message: string, details: StepErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    if (details.httpStatus !== undefined) this.httpStatus = details.httpStatus;
    if (details.exitCode !== undefined) this.exitCode = details.exitCode;
    if (details.sizeBytesActual !== undefined) this.sizeBytesActual = details.sizeBytesActual;
    if (details.sizeBytesExpected !== undefined) this.sizeBytesExpected = details.sizeBytesExpected;
    if (details.sha256Actual !== undefined) this.sha256Actual = details.sha256Actual;
    if (details.sha256Expected !== undefined) this.sha256Expected = details.sha256Expected;
    if (details.fileReadFailed !== undefined) this.fileReadFailed = { ...details.fileReadFailed };
    if (details.deployment !== undefined) this.deployment = details.deployment;
    this.retryable = details.retryable ?? defaultRetryable(code, details);
  }

  /** The task's `error` JSON: code, message and only the detail fields that apply. */
  toTaskError(): TaskError {
    const out: TaskError = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.httpStatus !== undefined) out.httpStatus = this.httpStatus;
    if (this.exitCode !== undefined) out.exitCode = this.exitCode;
    if (this.sizeBytesActual !== undefined) out.sizeBytesActual = this.sizeBytesActual;
    if (this.sizeBytesExpected !== undefined) out.sizeBytesExpected = this.sizeBytesExpected;
    if (this.sha256Actual !== undefined) out.sha256Actual = this.sha256Actual;
    if (this.sha256Expected !== undefined) out.sha256Expected = this.sha256Expected;
    if (this.fileReadFailed !== undefined) out.fileReadFailed = { ...this.fileReadFailed };
    if (this.deployment !== undefined) out.deployment = this.deployment;
    return out;
  }
}

/**
 * Network trouble (DNS, refused, timeout, broken body, HTTP 408/429/5xx) and storage trouble may
 * pass on their own; a wrong tar, a 404 or a size/sha256 mismatch will not.
 */
function defaultRetryable(code: StepErrorCode, d: StepErrorDetails): boolean {
  if (RETRYABLE_BY_DEFAULT.has(code)) return true;
  if (code !== 'download-failed') return false;
  if (d.httpStatus !== undefined) return d.httpStatus === 408 || d.httpStatus === 429 || d.httpStatus >= 500;
  return (
    d.exitCode !== DownloadExitCode.UnsupportedProtocol &&
    d.exitCode !== DownloadExitCode.UrlMalformed &&
    d.exitCode !== DownloadExitCode.SslConnectError
  );
}

/** Narrowing helper for catch blocks. */
export function isStepError(err: unknown): err is StepError {
  return err instanceof StepError;
}

/** The StepError for a fired AbortSignal. */
export function canceledError(signal: AbortSignal | undefined): StepError {
  const reason = signal?.reason;
  const why = reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'aborted';
  return new StepError('canceled', `step canceled: ${why}`, { cause: reason });
}

/** Throws `canceledError(signal)` when the signal has fired; call between units of work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw canceledError(signal);
}

/** Runs a depot operation; any non-StepError failure becomes a retryable `storage-failed`. */
export async function storageStep<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StepError) throw err;
    const code = (err as { code?: unknown } | null)?.code;
    throw new StepError('storage-failed', `${what}${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err });
  }
}
