// Step 1 of an import (api.md §7.2 `dltar`): obtain the native build's tar and verify it.
import type { BlobStore } from '../storage/blob-store.js';
import type { TarCompression } from '@rockit/engine';
import type { AddressPolicy, HostLookup } from '../net/address-policy.js';
/** The SSRF policy lives in net/address-policy.ts (shared with webhooks); re-exported for dltar's callers. */
export { isPublicAddress } from '../net/address-policy.js';
import { DownloadExitCode, StepError, canceledError } from './errors.js';
import { deleteQuietly } from './store-io.js';
import { lastSegment, safeUrl } from './dltar/download-errors.js';
import { openHttp } from './dltar/http-source.js';
import { openS3 } from './dltar/s3-source.js';
import { verifyUpload } from './dltar/upload-source.js';
import { streamAndVerify } from './dltar/verify.js';

export interface DltarProgress {
  receivedBytes: number;
  /** The expected total when known (announced size, Content-Length or stored size). */
  totalBytes?: number;
  /** receivedBytes / totalBytes in [0, 1], when the total is known. */
  fraction?: number;
}

export interface ObtainTarOptions {
  /** `http://`, `https://` or `s3://bucket/key`. Without it, the uploaded object at `uploadKey` is verified. */
  url?: string;
  /** Where the client's PUT stored the tar (upload imports). */
  uploadKey?: string;
  /** Announced size in bytes (api.md §7.2 `size`); checked when given. */
  sizeBytes?: number;
  /** Announced SHA-256, hex (api.md §7.2 `sha256`); checked when given (case-insensitive). */
  sha256?: string;
  /** The installation's blob store (where the tar ends up). */
  blobStore: BlobStore;
  /** Key the downloaded tar is stored at (downloads; required with `url`). */
  destKey?: string;
  signal?: AbortSignal;
  onProgress?: (p: DltarProgress) => void;
  /** Refuse bodies larger than this (exit code 63). */
  maxBytes: number;
  /**
   * Where `s3://` URLs may be read (cluster mode): `keyOf` maps a URL to a key of `store` when the
   * URL is allowed (the org's import prefix, see s3-import-scope.ts) and to null otherwise; `store`
   * is shared (never closed here). Absent: s3:// URLs are refused.
   */
  s3Source?: { keyOf(url: string): string | null; store: BlobStore };
  /** Abort a download that receives nothing for this long (exit code 28). Default 60 s. */
  idleTimeoutMs?: number;
  /**
   * Whether the server may download from a resolved address (SSRF guard for http/https URLs,
   * checked on every redirect hop). Absent: any address. Use `isPublicAddress` to keep org users'
   * URLs out of the installation's private networks.
   */
  addressPolicy?: AddressPolicy;
  /**
   * Resolves the host of every http/https hop, once: the connection goes to exactly the addresses
   * it answered (and `addressPolicy` passed). Default: the system resolver. Injectable for tests.
   */
  lookup?: HostLookup;
  /**
   * For an upload the server hashed as it arrived (one PUT carried every byte): its digest and
   * compression. The object is then checked by size and digest without being read again.
   */
  uploadDigest?: { sha256: string; compression: TarCompression };
}

export interface ObtainedTar {
  /** Where the verified tar is: `destKey` for downloads, `uploadKey` for uploads. */
  tarKey: string;
  sizeBytes: number;
  /** SHA-256 of the stored bytes, lower-case hex. */
  sha256: string;
  compression: TarCompression;
}

/**
 * Obtains the import's tar and verifies it; the contract of the `dltar` step.
 *
 * - With `url` (`http`/`https`, following redirects, each hop's host resolved once and connected
 *   to at the checked addresses only; `s3://bucket/key` through `s3Source`, only where it allows): streams the
 *   body into `blobStore` at `destKey`, hashing and counting on the way (never buffered whole).
 * - Without `url`: verifies the object at `uploadKey` in place (it is read once to hash it, unless
 *   `uploadDigest` says the server hashed it on the way in: then size and digest are checked).
 *
 * The first 512 bytes must be a tar header (valid checksum) or the gzip/zstd magic, otherwise the
 * step stops at once. Size (announced `sizeBytes`, `maxBytes`) is enforced while streaming; sha256
 * after the last byte.
 *
 * Errors (all `StepError`): `download-failed` with `httpStatus` (HTTP ≥ 400, exit code 22) or a
 * curl-like `exitCode` (see `DownloadExitCode`); `too-large`; `size-mismatch` with
 * `sizeBytesActual`/`sizeBytesExpected`; `sha256-mismatch` with `sha256Actual`/`sha256Expected`;
 * `not-a-tar` with `fileReadFailed`; `upload-missing`; `storage-failed`; `canceled`. Messages name
 * the URL without credentials or query string.
 *
 * Nothing is left behind on failure: a download's partial object at `destKey` is deleted; an upload
 * whose content is refused (size, sha256, not a tar) is deleted too, since it can never pass.
 */
export async function obtainTar(options: ObtainTarOptions): Promise<ObtainedTar> {
  if (options.signal?.aborted) throw canceledError(options.signal);
  if (options.url !== undefined) return download(options, options.url);
  if (options.uploadKey !== undefined) return verifyUpload(options, options.uploadKey);
  throw new TypeError('obtainTar needs a url or an uploadKey');
}

async function download(options: ObtainTarOptions, url: string): Promise<ObtainedTar> {
  const { blobStore, destKey } = options;
  if (destKey === undefined) throw new TypeError('obtainTar: destKey is required with url');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StepError('download-failed', 'the download URL is not a valid URL', { exitCode: DownloadExitCode.UrlMalformed });
  }
  const shown = safeUrl(parsed);
  if (parsed.username !== '' || parsed.password !== '') {
    throw new StepError('download-failed', `${shown}: URLs with credentials are not accepted (use a pre-signed URL)`, {
      exitCode: DownloadExitCode.UrlMalformed,
    });
  }
  const source =
    parsed.protocol === 'http:' || parsed.protocol === 'https:'
      ? await openHttp(options, parsed, shown)
      : parsed.protocol === 's3:'
        ? await openS3(options, url, parsed, shown)
        : null;
  if (source === null) {
    throw new StepError('download-failed', `unsupported URL scheme ${parsed.protocol.replace(/:$/, '')} (use http, https or s3)`, {
      exitCode: DownloadExitCode.UnsupportedProtocol,
    });
  }
  return streamAndVerify(options, source, {
    shown,
    filename: lastSegment(parsed.pathname),
    write: (body) => blobStore.put(destKey, body, options.signal ? { signal: options.signal } : {}),
    resultKey: destKey,
    onRefused: () => deleteQuietly(blobStore, destKey),
    // The object may be half-written (or fully written before a mismatch): never keep it.
    onAnyFailure: () => deleteQuietly(blobStore, destKey),
  });
}
