// S3 failures as StorageErrors: SDK and network errors mapped to stable codes, with messages that
// never carry credentials; for endpoints an org user chose, one opaque answer (details to the log).
import { StorageError, type StorageErrorCode } from './storage-error.js';

/** What an opaque error leaves out of its message (for logs only: never shown to org users). */
export interface S3ErrorDetail {
  op: string;
  location: string;
  name: string;
  code?: string;
  httpStatus?: number;
  message?: string;
}

/** The one message of an opaque store for every failure that is not the org's to fix. */
export const S3_ENDPOINT_FAILED = 'the S3 endpoint could not be reached or did not answer as an S3 service';

const ACCESS_DENIED_NAMES = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AllAccessDisabled',
  'AccountProblem',
]);
/** S3's refusals of a CompleteMultipartUpload whose part list does not match the stored parts. */
const PART_LIST_NAMES = new Set(['EntityTooSmall', 'InvalidPart', 'InvalidPartOrder']);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export interface SdkLikeError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join('***');
  return out;
}

/** What the mapping needs to know of the store. */
export interface S3ErrorContext {
  bucket: string;
  /** `s3://bucket/prefix/key` of a key. */
  where: (key: string) => string;
  /** The bucket and prefix, without a key or the endpoint (messages of opaque errors). */
  location: string;
  /** Texts never to show (the secret access key). */
  secrets: string[];
  /** Whether the endpoint is an org user's: see `opaqueError`. */
  opaque: boolean;
  logError?: ((detail: S3ErrorDetail) => void) | undefined;
}

/** Maps an SDK or network error to a StorageError; the message carries no server text that could echo credentials. */
export function mapS3Error(err: unknown, op: string, key: string, ctx: S3ErrorContext): StorageError {
  if (err instanceof StorageError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkLikeError;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? 'Error';
  const what = `S3 ${op} ${ctx.where(key)}`;
  let code: StorageErrorCode;
  let detail: string;
  if (name === 'AbortError' || e.code === 'ABORT_ERR') {
    code = 'aborted';
    detail = 'aborted';
  } else if (name === 'NoSuchBucket') {
    code = 'not-found';
    detail = `bucket ${ctx.bucket} does not exist`;
  } else if (name === 'NoSuchUpload') {
    code = 'not-found';
    detail = 'no such multipart upload (unknown, completed or aborted)';
  } else if (PART_LIST_NAMES.has(name)) {
    code = 'integrity';
    detail = `the part list does not match the stored parts (${name})`;
  } else if (status === 404 || name === 'NoSuchKey' || name === 'NotFound') {
    code = 'not-found';
    detail = 'no such object';
  } else if (status === 401 || status === 403 || ACCESS_DENIED_NAMES.has(name)) {
    code = 'access-denied';
    detail = `access denied (${name})`;
  } else if (status === 416 || name === 'InvalidRange') {
    code = 'invalid-range';
    detail = 'range not satisfiable';
  } else if (status === undefined && (NETWORK_CODES.has(e.code ?? '') || name === 'TimeoutError' || e.code === 'ETIMEDOUT')) {
    code = 'unreachable';
    // Network messages carry host:port and the errno, nothing secret; redact anyway.
    detail = `endpoint unreachable (${e.code ?? name})`;
  } else if (status === undefined && /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|socket hang up|timed? ?out/i.test(e.message ?? '')) {
    code = 'unreachable';
    detail = 'endpoint unreachable';
  } else {
    code = 'io';
    detail = status === undefined ? `${name}` : `${name} (HTTP ${status})`;
  }
  if (ctx.opaque) return opaqueError(code, err, op, key, ctx);
  const message = redact(`${what}: ${detail}${status !== undefined ? ` [HTTP ${status}]` : ''}`, ctx.secrets);
  return new StorageError(code, message, status !== undefined ? { httpStatus: status } : {});
}

/**
 * `mapS3Error` for an endpoint that an org user chose: the codes the org can act on keep fixed
 * messages (no `<Code>`, status or errno of the endpoint); everything else is one `unreachable`
 * answer without the key (so that answers compare equal). The detail goes to `logError`.
 */
function opaqueError(code: StorageErrorCode, err: unknown, op: string, key: string, ctx: S3ErrorContext): StorageError {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkLikeError;
  const status = e.$metadata?.httpStatusCode;
  const fixed: Partial<Record<StorageErrorCode, string>> = {
    aborted: 'aborted',
    'access-denied': 'access denied',
    'not-found': e.name === 'NoSuchBucket' ? `bucket ${ctx.bucket} does not exist` : 'no such object',
    'invalid-range': 'range not satisfiable',
    integrity: 'the part list does not match the stored parts',
  };
  const detail = fixed[code];
  // Misses (a head before a copy) and aborts are routine, not worth a log line.
  if (code !== 'aborted' && code !== 'not-found' && code !== 'invalid-range') {
    ctx.logError?.({
      op, location: ctx.where(key), name: e.name ?? 'Error', ...(e.code ? { code: e.code } : {}),
      ...(status !== undefined ? { httpStatus: status } : {}), ...(e.message ? { message: redact(e.message, ctx.secrets) } : {}),
    });
  }
  if (detail === undefined) return new StorageError('unreachable', `${ctx.location}: ${S3_ENDPOINT_FAILED}`);
  return new StorageError(code, `S3 ${op} ${ctx.where(key)}: ${detail}`, status !== undefined ? { httpStatus: status } : {});
}
