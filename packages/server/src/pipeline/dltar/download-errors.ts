// The dltar step's error mapping: network, S3 and storage failures as StepErrors with curl-like exit codes.
import { DownloadExitCode, StepError } from '../errors.js';

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL']);
const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EHOSTDOWN']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT']);

/** Maps a lookup, socket, TLS or body failure (the code sits on the error or its `cause` chain) to a curl-like exit code. */
export function networkError(err: unknown, shown: string): StepError {
  const code = errorCode(err);
  let exitCode: DownloadExitCode = DownloadExitCode.RecvError;
  let what = 'the connection broke';
  if (code !== undefined && DNS_CODES.has(code)) {
    exitCode = DownloadExitCode.CouldNotResolveHost;
    what = 'could not resolve the host';
  } else if (code !== undefined && CONNECT_CODES.has(code)) {
    exitCode = DownloadExitCode.CouldNotConnect;
    what = 'could not connect';
  } else if (code !== undefined && TIMEOUT_CODES.has(code)) {
    exitCode = DownloadExitCode.Timeout;
    what = 'timed out';
  } else if (code !== undefined && (/CERT|SSL|TLS/.test(code) || code === 'DEPTH_ZERO_SELF_SIGNED_CERT')) {
    exitCode = DownloadExitCode.SslConnectError;
    what = 'TLS handshake failed';
  }
  return new StepError('download-failed', `${shown}: ${what}${code ? ` (${code})` : ''}`, { exitCode, cause: err });
}

function errorCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    if (Array.isArray((e as { errors?: unknown }).errors)) {
      // AggregateError from happy-eyeballs connects: the first inner code is representative.
      const inner = errorCode((e as { errors: unknown[] }).errors[0]);
      if (inner) return inner;
    }
  }
  return undefined;
}

/** StorageError codes (storage/storage-error.ts) of an `s3://` source, as HTTP-like download failures. */
export function s3Error(err: unknown, shown: string): StepError {
  const code = (err as { code?: unknown } | null)?.code;
  const status = (err as { httpStatus?: unknown } | null)?.httpStatus;
  if (code === 'not-found') {
    return new StepError('download-failed', `${shown}: no such object`, { httpStatus: 404, exitCode: DownloadExitCode.HttpError, cause: err });
  }
  if (code === 'access-denied') {
    return new StepError('download-failed', `${shown}: access denied`, {
      httpStatus: typeof status === 'number' ? status : 403,
      exitCode: DownloadExitCode.HttpError,
      cause: err,
    });
  }
  if (code === 'unreachable') {
    return new StepError('download-failed', `${shown}: could not connect`, { exitCode: DownloadExitCode.CouldNotConnect, cause: err });
  }
  return new StepError('download-failed', `${shown}: reading failed`, {
    exitCode: DownloadExitCode.RecvError,
    ...(typeof status === 'number' ? { httpStatus: status } : {}),
    cause: err,
  });
}

export function storageFailed(what: string, err: unknown): StepError {
  const code = (err as { code?: unknown } | null)?.code;
  return new StepError('storage-failed', `${what}${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err });
}

export function sizeMismatch(actual: number, expected: number, shown: string, atLeast = false): StepError {
  return new StepError(
    'size-mismatch',
    `${shown}: size is ${atLeast ? 'more than ' : ''}${atLeast ? expected : actual} bytes, expected ${expected}`,
    { sizeBytesActual: actual, sizeBytesExpected: expected },
  );
}

export function tooLarge(actual: number, limit: number): StepError {
  return new StepError('too-large', `the build exceeds the limit of ${limit} bytes`, {
    sizeBytesActual: actual,
    exitCode: DownloadExitCode.FileSizeExceeded,
  });
}

/** The URL as it may be shown: scheme, host and path — no credentials, no query (signatures), no fragment. */
export function safeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

export function lastSegment(path: string): string {
  const parts = path.split('/').filter((s) => s !== '');
  return parts.length ? decodeURIComponentSafe(parts[parts.length - 1]) : '';
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
