// Step 1 of an import (api.md §7.2 `dltar`): obtain the native build's tar and verify it.
import { createHash } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline as chain, Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zlib, createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';

import {
  AddressRefusedError,
  pinnedLookup,
  resolveChecked,
  urlHost,
  type AddressPolicy,
  type HostLookup,
  type ResolvedAddress,
} from '../net/address-policy.js';
/** The SSRF policy lives in net/address-policy.ts (shared with webhooks); re-exported for dltar's callers. */
export { isPublicAddress } from '../net/address-policy.js';
import { DownloadExitCode, StepError, canceledError, type FileReadFailed } from './errors.js';
import type { BlobStore } from '../storage/blob-store.js';
import { deleteQuietly, openRead } from './store-io.js';

/** How the tar's bytes are compressed, from its magic bytes. */
export type TarCompression = 'none' | 'gzip' | 'zstd';

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

const TYPE_EXPECTED = 'tar (plain, gzip or zstd)';
const TAR_BLOCK = 512;
/** Report progress at least every this many bytes. */
const PROGRESS_STEP_BYTES = 1 << 20;

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

async function verifyUpload(options: ObtainTarOptions, uploadKey: string): Promise<ObtainedTar> {
  const { blobStore } = options;
  let head: { sizeBytes: number } | null;
  try {
    head = await blobStore.head(uploadKey);
  } catch (err) {
    throw storageFailed('cannot read the uploaded build', err);
  }
  if (head === null) throw new StepError('upload-missing', 'the build was not uploaded (no object at the upload URL)');
  if (options.sizeBytes !== undefined && head.sizeBytes !== options.sizeBytes) {
    await deleteQuietly(blobStore, uploadKey);
    throw sizeMismatch(head.sizeBytes, options.sizeBytes, 'the uploaded build');
  }
  if (head.sizeBytes > options.maxBytes) {
    await deleteQuietly(blobStore, uploadKey);
    throw tooLarge(head.sizeBytes, options.maxBytes);
  }
  const known = options.uploadDigest;
  if (known !== undefined) {
    if (options.sha256 !== undefined && known.sha256 !== options.sha256.toLowerCase()) {
      await deleteQuietly(blobStore, uploadKey);
      throw new StepError('sha256-mismatch', `the uploaded build: SHA-256 is ${known.sha256}, expected ${options.sha256.toLowerCase()}`, {
        sha256Actual: known.sha256,
        sha256Expected: options.sha256.toLowerCase(),
      });
    }
    options.onProgress?.({ receivedBytes: head.sizeBytes, totalBytes: head.sizeBytes, fraction: 1 });
    return { tarKey: uploadKey, sizeBytes: head.sizeBytes, sha256: known.sha256, compression: known.compression };
  }
  let body: Readable;
  try {
    body = await openRead(blobStore, uploadKey);
  } catch (err) {
    throw storageFailed('cannot read the uploaded build', err);
  }
  return streamAndVerify(
    options,
    { body, totalBytes: head.sizeBytes, classify: (err) => storageFailed('reading the uploaded build failed', err) },
    {
      shown: 'the uploaded build',
      filename: lastSegment(uploadKey),
      write: async (stream) => {
        await pipeline(stream, new Writable({ write: (_c, _e, cb) => cb() }));
      },
      resultKey: uploadKey,
      onRefused: () => deleteQuietly(blobStore, uploadKey),
      onAnyFailure: async () => {},
    },
  );
}

/** An opened source body and how to turn its stream errors into StepErrors. */
interface Source {
  body: Readable;
  totalBytes?: number;
  /** Turns a stream error of `body` into the step's error. */
  classify: (err: unknown, receivedBytes: number) => StepError;
  /** Disposes of timers etc.; called once the body is done (either way). */
  close?: () => void;
  /** Abort controller that ends the body when the inspector refuses it. */
  abort?: (reason: StepError) => void;
}

interface Sink {
  shown: string;
  filename: string;
  write: (body: Readable) => Promise<unknown>;
  resultKey: string;
  /** Called when the content is refused (size, sha256, not a tar). */
  onRefused: () => Promise<void>;
  /** Called on every failure, after onRefused when both apply. */
  onAnyFailure: () => Promise<void>;
}

async function streamAndVerify(options: ObtainTarOptions, source: Source, sink: Sink): Promise<ObtainedTar> {
  const expected = options.sizeBytes;
  const limit = options.maxBytes;
  const totalBytes = expected ?? source.totalBytes;
  let failure: StepError | undefined;
  const fail = (e: StepError): StepError => {
    failure ??= e;
    if (source.abort) source.abort(failure);
    else source.body.destroy();
    return failure;
  };

  const inspector = new TarInspector({
    filename: sink.filename,
    check: (received) => {
      if (expected !== undefined && received > expected) return sizeMismatch(received, expected, sink.shown, true);
      if (received > limit) return tooLarge(received, limit);
      return undefined;
    },
    onProgress: (receivedBytes) => {
      if (!options.onProgress) return;
      const p: DltarProgress = { receivedBytes };
      if (totalBytes !== undefined && totalBytes > 0) {
        p.totalBytes = totalBytes;
        p.fraction = Math.min(1, receivedBytes / totalBytes);
      }
      options.onProgress(p);
    },
    onRefuse: (e) => fail(e),
  });

  source.body.on('error', (err) => {
    if (failure === undefined) fail(options.signal?.aborted ? canceledError(options.signal) : source.classify(err, inspector.receivedBytes));
  });
  const onAbort = (): void => {
    const e = fail(canceledError(options.signal));
    source.body.destroy(e);
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });

  let refused = false;
  try {
    // Every stream error is recorded through `fail` (or surfaces as the sink's rejection); these
    // listeners keep a late duplicate 'error' from becoming an uncaught exception.
    inspector.on('error', () => {});
    source.body.on('error', (err) => inspector.destroy(err));
    source.body.pipe(inspector);
    try {
      await sink.write(inspector);
    } catch (err) {
      if (failure === undefined) fail(storageFailed('storing the build failed', err));
    }
    if (failure === undefined && !inspector.finished) {
      fail(storageFailed('the blob store stopped reading the build early', undefined));
    }
    if (failure !== undefined) {
      refused = failure.code === 'size-mismatch' || failure.code === 'too-large' || failure.code === 'not-a-tar';
      throw failure;
    }
    const received = inspector.receivedBytes;
    if (source.totalBytes !== undefined && expected === undefined && received < source.totalBytes) {
      throw fail(
        new StepError('download-failed', `${sink.shown}: the body ended after ${received} of ${source.totalBytes} bytes`, {
          exitCode: DownloadExitCode.PartialFile,
          sizeBytesActual: received,
          sizeBytesExpected: source.totalBytes,
        }),
      );
    }
    if (expected !== undefined && received !== expected) {
      refused = true;
      throw fail(sizeMismatch(received, expected, sink.shown));
    }
    const sha256 = inspector.digest();
    if (options.sha256 !== undefined && sha256 !== options.sha256.toLowerCase()) {
      refused = true;
      throw fail(
        new StepError('sha256-mismatch', `${sink.shown}: SHA-256 is ${sha256}, expected ${options.sha256.toLowerCase()}`, {
          sha256Actual: sha256,
          sha256Expected: options.sha256.toLowerCase(),
        }),
      );
    }
    options.onProgress?.({ receivedBytes: received, totalBytes: received, fraction: 1 });
    return { tarKey: sink.resultKey, sizeBytes: received, sha256, compression: inspector.compression ?? 'none' };
  } catch (err) {
    if (refused) await sink.onRefused();
    await sink.onAnyFailure();
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    source.close?.();
    // After a failure the source may still be open (e.g. the store gave up first): release it.
    if (!source.body.destroyed) source.body.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Sources

async function openHttp(options: ObtainTarOptions, url: URL, shown: string): Promise<Source> {
  const controller = new AbortController();
  const idleMs = options.idleTimeoutMs ?? 60_000;
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error('idle timeout'));
    }, idleMs);
    timer.unref?.();
  };
  const onAbort = (): void => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const close = (): void => {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  };

  let contentLength: number | undefined;
  const classify = (err: unknown, received: number): StepError => {
    if (options.signal?.aborted) return canceledError(options.signal);
    if (timedOut) {
      return new StepError('download-failed', `${shown}: no data received for ${Math.round(idleMs / 1000)} s`, {
        exitCode: DownloadExitCode.Timeout,
        cause: err,
      });
    }
    if (contentLength !== undefined && received < contentLength) {
      return new StepError('download-failed', `${shown}: connection closed after ${received} of ${contentLength} bytes`, {
        exitCode: DownloadExitCode.PartialFile,
        sizeBytesActual: received,
        sizeBytesExpected: contentLength,
        cause: err,
      });
    }
    return networkError(err, shown);
  };

  arm();
  let res: IncomingMessage;
  try {
    res = await getFollowingRedirects(options, url, controller.signal);
  } catch (err) {
    close();
    if (err instanceof StepError) throw err;
    throw classify(err, 0);
  }
  const status = res.statusCode ?? 0;
  if (!hasBody(status)) {
    close();
    res.destroy();
    throw new StepError('download-failed', `${shown}: HTTP ${status}`, {
      httpStatus: status,
      exitCode: DownloadExitCode.HttpError,
    });
  }
  const lengthHeader = res.headers['content-length'];
  // A Content-Length of a content-encoded body counts the encoded bytes: not comparable.
  if (lengthHeader !== undefined && /^\d+$/.test(lengthHeader) && !res.headers['content-encoding']) {
    contentLength = Number(lengthHeader);
  }
  const early = contentLength === undefined ? undefined : checkAnnounced(contentLength, options, shown);
  if (early) {
    close();
    res.destroy();
    throw early;
  }
  const body = decodedBody(res);
  // Every abort (idle timeout, cancel, refusal by the inspector) ends the body with an error.
  controller.signal.addEventListener('abort', () => body.destroy(asError(controller.signal.reason)), { once: true });
  // The timeout measures the network only: it stops while the store applies backpressure.
  body.on('data', arm);
  body.on('pause', () => clearTimeout(timer));
  body.on('resume', arm);
  body.on('close', () => clearTimeout(timer));
  return {
    body,
    ...(contentLength !== undefined ? { totalBytes: contentLength } : {}),
    classify,
    close,
    abort: (reason) => controller.abort(reason),
  };
}

/** Redirects followed at most (as browsers and curl --max-redirs defaults roughly do). */
const MAX_REDIRECTS = 10;
/** Statuses whose Location is followed (fetch's set); any other status is the answer. */
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Connecting (TCP, and the TLS handshake for https) gives up after this long (exit code 28), like fetch did. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Sent with every request; the encodings are undone by `decodedBody` (as fetch did). */
const REQUEST_HEADERS = { accept: '*/*', 'accept-encoding': 'gzip, deflate, br', 'user-agent': 'rockit-edge-dltar/1' };

/**
 * GETs `first`, following redirects (at most MAX_REDIRECTS hops; only to http/https). Every hop's
 * host is resolved once with `options.lookup` and each address checked against
 * `options.addressPolicy` (a redirect to a refused address is refused like a direct link to one);
 * the connection then goes to those addresses only, so a name whose DNS answer changes after the
 * check (DNS rebinding) cannot lead anywhere else. Resolves with the final answer (its body unread);
 * rejects with a StepError for refused addresses and redirect problems, with the socket or lookup
 * error otherwise.
 */
async function getFollowingRedirects(options: ObtainTarOptions, first: URL, signal: AbortSignal): Promise<IncomingMessage> {
  let url = first;
  for (let hop = 0; ; hop++) {
    const res = await get(url, await resolveHop(options, url, signal), signal);
    const location = res.headers.location;
    if (!REDIRECT_STATUSES.has(res.statusCode ?? 0) || location === undefined) return res;
    res.destroy();
    if (hop >= MAX_REDIRECTS) {
      throw new StepError('download-failed', `${safeUrl(first)}: too many redirects`, { httpStatus: res.statusCode, exitCode: DownloadExitCode.HttpError, retryable: false });
    }
    const next = new URL(location, url);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new StepError('download-failed', `${safeUrl(first)}: redirected to an unsupported scheme`, { exitCode: DownloadExitCode.UnsupportedProtocol });
    }
    url = next;
  }
}

/** The checked addresses of `url`'s host; a refused one is a non-retryable `download-failed` (exit code 7). */
async function resolveHop(options: ObtainTarOptions, url: URL, signal: AbortSignal): Promise<ResolvedAddress[]> {
  try {
    return await resolveChecked(urlHost(url), options.addressPolicy, options.lookup, signal);
  } catch (err) {
    if (!(err instanceof AddressRefusedError)) throw err;
    throw new StepError('download-failed', `${safeUrl(url)}: downloads from this address are not allowed`, {
      exitCode: DownloadExitCode.CouldNotConnect,
      retryable: false,
    });
  }
}

/**
 * One GET of `url` over a fresh connection (no pooled socket) to `addresses` only; the URL's host
 * stays the Host header and the TLS server name (certificates are checked against it). Resolves
 * once the answer's head arrived; rejects with the request's error (connect, TLS, connect timeout,
 * `signal`), later errors reach the answer's body.
 */
function get(url: URL, addresses: ResolvedAddress[], signal: AbortSignal): Promise<IncomingMessage> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = send(url, { headers: REQUEST_HEADERS, signal, agent: false, lookup: pinnedLookup(addresses) }, resolve);
    req.on('error', reject);
    limitConnectTime(req, url.protocol === 'https:' ? 'secureConnect' : 'connect');
    req.end();
  });
}

/** Destroys `req` with an ETIMEDOUT error when its socket has not reached `connected` within CONNECT_TIMEOUT_MS. */
function limitConnectTime(req: ClientRequest, connected: 'connect' | 'secureConnect'): void {
  req.once('socket', (socket) => {
    if (!socket.connecting) return;
    const timer = setTimeout(() => {
      const err: NodeJS.ErrnoException = new Error(`connecting took more than ${CONNECT_TIMEOUT_MS / 1000} s`);
      err.code = 'ETIMEDOUT';
      req.destroy(err);
    }, CONNECT_TIMEOUT_MS);
    const stop = (): void => clearTimeout(timer);
    socket.once(connected, stop);
    socket.once('close', stop);
  });
}

/** Whether an answer with this status is the build (fetch's `ok` with a body: 2xx except 204 and 205). */
const hasBody = (status: number): boolean => status >= 200 && status <= 299 && status !== 204 && status !== 205;

/**
 * The answer's body with its Content-Encoding undone, as fetch delivered it: gzip / x-gzip,
 * deflate and br, several in reverse order of application. A body with an unknown coding is left
 * as sent. Destroying the returned stream destroys the answer, and the answer's errors reach it.
 */
function decodedBody(res: IncomingMessage): Readable {
  const codings = (res.headers['content-encoding'] ?? '')
    .toLowerCase()
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '' && c !== 'identity')
    .reverse();
  const decoders = codings.map(decoderFor);
  if (decoders.length === 0 || decoders.some((d) => d === undefined)) return res;
  const steps = decoders as Transform[];
  chain([res, ...steps], () => {});
  return steps[steps.length - 1];
}

/** A lenient decoder (a truncated stream ends without an error, as in fetch) for one content coding. */
function decoderFor(coding: string): Transform | undefined {
  const lenient = { flush: zlib.Z_SYNC_FLUSH, finishFlush: zlib.Z_SYNC_FLUSH };
  if (coding === 'gzip' || coding === 'x-gzip') return createGunzip(lenient);
  if (coding === 'deflate') return createInflate(lenient);
  if (coding === 'br') return createBrotliDecompress({ flush: zlib.BROTLI_OPERATION_FLUSH, finishFlush: zlib.BROTLI_OPERATION_FLUSH });
  return undefined;
}

/** An abort reason as an Error (a stream must be destroyed with one). */
const asError = (reason: unknown): Error => (reason instanceof Error ? reason : new Error(String(reason)));

async function openS3(options: ObtainTarOptions, raw: string, url: URL, shown: string): Promise<Source> {
  if (!url.hostname || url.pathname.replace(/^\/+/, '') === '') {
    throw new StepError('download-failed', `${shown}: an s3 URL needs a bucket and a key (s3://bucket/key)`, {
      exitCode: DownloadExitCode.UnsupportedProtocol,
    });
  }
  if (!options.s3Source) {
    throw new StepError('download-failed', 's3:// URLs are not enabled on this installation', {
      exitCode: DownloadExitCode.UnsupportedProtocol,
    });
  }
  // Checked again here (POST /be/v1/builds checked it first): a URL outside the allowed scope is
  // never read, so whether such an object exists cannot be learnt from the outcome.
  const key = options.s3Source.keyOf(raw);
  if (key === null) {
    throw new StepError('download-failed', `${shown}: not inside the organization's import prefix`, {
      exitCode: DownloadExitCode.UnsupportedProtocol,
    });
  }
  const { store } = options.s3Source;
  try {
    const head = await store.head(key);
    if (head === null) {
      throw new StepError('download-failed', `${shown}: no such object`, { httpStatus: 404, exitCode: DownloadExitCode.HttpError });
    }
    const early = checkAnnounced(head.sizeBytes, options, shown);
    if (early) throw early;
    const body = await openRead(store, key);
    return {
      body,
      totalBytes: head.sizeBytes,
      classify: (err) => (options.signal?.aborted ? canceledError(options.signal) : s3Error(err, shown)),
      abort: (reason) => body.destroy(reason),
      close: () => {},
    };
  } catch (err) {
    throw err instanceof StepError ? err : s3Error(err, shown);
  }
}

/** Refuses a body whose announced length already contradicts the announced size or the limit. */
function checkAnnounced(length: number, options: ObtainTarOptions, shown: string): StepError | undefined {
  if (options.sizeBytes !== undefined && length !== options.sizeBytes) return sizeMismatch(length, options.sizeBytes, shown);
  if (length > options.maxBytes) return tooLarge(length, options.maxBytes);
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Error mapping

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL']);
const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EHOSTDOWN']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT']);

/** Maps a lookup, socket, TLS or body failure (the code sits on the error or its `cause` chain) to a curl-like exit code. */
function networkError(err: unknown, shown: string): StepError {
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
function s3Error(err: unknown, shown: string): StepError {
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

function storageFailed(what: string, err: unknown): StepError {
  const code = (err as { code?: unknown } | null)?.code;
  return new StepError('storage-failed', `${what}${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err });
}

function sizeMismatch(actual: number, expected: number, shown: string, atLeast = false): StepError {
  return new StepError(
    'size-mismatch',
    `${shown}: size is ${atLeast ? 'more than ' : ''}${atLeast ? expected : actual} bytes, expected ${expected}`,
    { sizeBytesActual: actual, sizeBytesExpected: expected },
  );
}

function tooLarge(actual: number, limit: number): StepError {
  return new StepError('too-large', `the build exceeds the limit of ${limit} bytes`, {
    sizeBytesActual: actual,
    exitCode: DownloadExitCode.FileSizeExceeded,
  });
}

/** The URL as it may be shown: scheme, host and path — no credentials, no query (signatures), no fragment. */
function safeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function lastSegment(path: string): string {
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

// ---------------------------------------------------------------------------------------------
// Content inspection

/**
 * Classifies the first bytes of a would-be tar. `null` means "a tar"; otherwise what was found.
 * A plain tar's first 512-byte header must carry a valid checksum (this accepts v7, ustar, GNU and
 * PAX archives); gzip and zstd are recognised by magic only (the engine checks their content).
 */
export function sniffTar(head: Buffer): { compression: TarCompression } | { typeDetected: string } {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return { compression: 'gzip' };
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return { compression: 'zstd' };
  if (head.length >= TAR_BLOCK && tarChecksumOk(head.subarray(0, TAR_BLOCK))) return { compression: 'none' };
  return { typeDetected: describeBytes(head) };
}

function tarChecksumOk(block: Buffer): boolean {
  const field = block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]{1,8}$/.test(field)) return false;
  const stored = parseInt(field, 8);
  let unsigned = 0;
  for (let i = 0; i < TAR_BLOCK; i++) unsigned += i >= 148 && i < 156 ? 0x20 : block[i];
  return stored === unsigned;
}

function describeBytes(b: Buffer): string {
  if (b.length === 0) return 'empty file';
  if (b.length < TAR_BLOCK && b.every((x) => x === 0)) return 'truncated file';
  if (b.every((x) => x === 0)) return 'empty tar (no entries) or zero bytes';
  const starts = (sig: number[]): boolean => sig.every((x, i) => b[i] === x);
  if (starts([0x50, 0x4b, 0x03, 0x04])) return 'zip';
  if (starts([0x42, 0x5a, 0x68])) return 'bzip2';
  if (starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (starts([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])) return '7z';
  const text = b.subarray(0, 64).toString('latin1').trimStart().toLowerCase();
  if (text.startsWith('<!doctype html') || text.startsWith('<html')) return 'html';
  if (text.startsWith('<?xml') || text.startsWith('<')) return 'xml';
  if (text.startsWith('{') || text.startsWith('[')) return 'json';
  if (b.length < TAR_BLOCK) return 'truncated file';
  return 'unknown';
}

interface InspectorOptions {
  filename: string;
  /** Called with the running byte count; a returned error stops the stream. */
  check: (receivedBytes: number) => StepError | undefined;
  /** Called about every PROGRESS_STEP_BYTES and once at the end. */
  onProgress: (receivedBytes: number) => void;
  /** Records the refusal; returns the error to destroy the stream with. */
  onRefuse: (e: StepError) => StepError;
}

/** Pass-through that hashes, counts, enforces limits and refuses non-tars after the first 512 bytes. */
class TarInspector extends Transform {
  receivedBytes = 0;
  compression: TarCompression | undefined;
  finished = false;
  private readonly hash = createHash('sha256');
  private head: Buffer[] = [];
  private headBytes = 0;
  private nextProgressAt = PROGRESS_STEP_BYTES;

  constructor(private readonly opts: InspectorOptions) {
    super();
  }

  digest(): string {
    return this.hash.digest('hex');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.receivedBytes += chunk.length;
    const limitError = this.opts.check(this.receivedBytes);
    if (limitError) return cb(this.opts.onRefuse(limitError));
    this.hash.update(chunk);
    if (this.compression === undefined) {
      this.head.push(chunk);
      this.headBytes += chunk.length;
      if (this.headBytes >= TAR_BLOCK) {
        const refusal = this.decide();
        if (refusal) return cb(refusal);
      }
    }
    if (this.receivedBytes >= this.nextProgressAt) {
      this.nextProgressAt = this.receivedBytes + PROGRESS_STEP_BYTES;
      this.opts.onProgress(this.receivedBytes);
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.compression === undefined) {
      const refusal = this.decide();
      if (refusal) return cb(refusal);
    }
    this.finished = true;
    this.opts.onProgress(this.receivedBytes);
    cb();
  }

  private decide(): StepError | undefined {
    const verdict = sniffTar(Buffer.concat(this.head));
    this.head = [];
    if ('compression' in verdict) {
      this.compression = verdict.compression;
      return undefined;
    }
    const detail: FileReadFailed = { filename: this.opts.filename, typeExpected: TYPE_EXPECTED, typeDetected: verdict.typeDetected };
    return this.opts.onRefuse(
      new StepError('not-a-tar', `${this.opts.filename || 'the build'} is not a tar (found: ${verdict.typeDetected})`, {
        fileReadFailed: detail,
      }),
    );
  }
}
