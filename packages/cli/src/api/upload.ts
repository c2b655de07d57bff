// The PUT of a build to the `upload.url` that `POST /be/v1/builds` returned (api.md §7.2).
//
// node:http rather than fetch: the body is a stream of known length (Content-Length is set, so
// the server and any S3 pre-signed URL get a plain, non-chunked request) and bytes are counted as
// the socket accepts them, which is what the progress bar shows. Credentials are attached only
// when the URL is on the API server itself; a pre-signed URL on another host never sees them.
import http from 'node:http';
import https from 'node:https';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { UploadStatusDto } from '@rockit/contract';
import { backoffDelayMs, type BackoffPolicy } from '@rockit/engine';
import { ApiError, NetworkError, USER_AGENT, toEnvelope } from './client.js';

export interface UploadOptions {
  url: URL;
  method: string;
  body: Readable;
  sizeBytes: number;
  headers?: Record<string, string>;
  /** Called with the bytes sent so far. */
  onProgress?: (sentBytes: number) => void;
  /** Idle socket timeout. Default 120 s. */
  idleTimeoutMs?: number;
}

export interface UploadResult {
  status: number;
  /** The parsed success envelope when the server answered with one, else null. */
  envelope: Record<string, unknown> | null;
}

/**
 * Streams `body` (exactly `sizeBytes` bytes) to `url`. Resolves on a 2xx answer. Throws
 * `ApiError` for an error answer (envelope or not), `NetworkError` when the connection fails, and
 * the body's own error when reading the build fails.
 */
export async function uploadStream(opts: UploadOptions): Promise<UploadResult> {
  const { url } = opts;
  const mod = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : null;
  if (!mod) throw new Error(`upload URL must be http or https: ${url.href}`);
  const req = mod.request(url, {
    method: opts.method,
    headers: {
      'content-type': 'application/x-tar',
      'content-length': String(opts.sizeBytes),
      'user-agent': USER_AGENT,
      accept: 'application/json',
      ...opts.headers,
    },
    timeout: opts.idleTimeoutMs ?? 120_000,
  });
  // A connection that moves no byte (a half-open one: the peer or a middlebox vanished) is given
  // up as a broken one: a resumable failure, not the build's.
  const idleMs = opts.idleTimeoutMs ?? 120_000;
  req.on('timeout', () => req.destroy(Object.assign(new Error(`the connection moved no byte for ${Math.round(idleMs / 1000)} s (idle)`), { code: 'ETIMEDOUT' })));

  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
  });

  // node:http does not hold a request body to its Content-Length: a short body would leave the
  // server waiting and a long one would corrupt the connection, so the count is enforced here.
  let sent = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sent += chunk.length;
      if (sent > opts.sizeBytes) return cb(new Error(`the build is longer than the ${opts.sizeBytes} bytes announced (did it change during the upload?)`));
      opts.onProgress?.(sent);
      cb(null, chunk);
    },
    flush(cb) {
      if (sent !== opts.sizeBytes) return cb(new Error(`the build ended after ${sent} of the ${opts.sizeBytes} bytes announced (did it change during the upload?)`));
      cb();
    },
  });
  let bodyError: unknown = null;
  const sending = pipeline(opts.body, counter, req).catch((err: unknown) => {
    bodyError = err;
  });

  // A server may answer (e.g. 413, 401) before the body is fully sent: its answer decides.
  let res: http.IncomingMessage;
  try {
    res = await response;
  } catch (err) {
    await sending;
    // If reading the build broke the request, that is the error to report.
    if (bodyError && !isSocketError(bodyError)) throw bodyError;
    throw new NetworkError(`upload to ${url.origin} failed: ${(err as Error).message}`, { cause: err });
  }
  const status = res.statusCode ?? 0;
  const requestId = headerValue(res.headers['x-request-id']);
  if (status < 200 || status >= 300) {
    const text = await readText(res);
    // The server refused; stop reading the build rather than pushing gigabytes nobody reads.
    opts.body.destroy();
    req.destroy();
    // toEnvelope throws an ApiError for every non-2xx answer.
    toEnvelope(status, res.statusMessage ?? '', text, requestId);
    throw new ApiError({ status, error: 'unexpected-response', message: `upload answered HTTP ${status}` });
  }
  await sending;
  if (bodyError) throw bodyError;
  const text = await readText(res);
  let envelope: Record<string, unknown> | null = null;
  try {
    const parsed: unknown = text ? JSON.parse(text) : null;
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) envelope = parsed as Record<string, unknown>;
  } catch {
    envelope = null;
  }
  return { status, envelope };
}

function isSocketError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'EPIPE' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

function headerValue(v: string | string[] | undefined): string | null {
  if (v === undefined) return null;
  return Array.isArray(v) ? (v[0] ?? null) : v;
}

async function readText(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    // Answers to an upload are small envelopes; never hold more than 1 MiB of a stray page.
    if (size < 1024 * 1024) chunks.push(chunk);
    size += chunk.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Where the server stands on an upload (`GET` of the upload URL; the server's README, "Resumable uploads"). */
export type UploadStatus = Pick<UploadStatusDto, 'state' | 'receivedBytes'>;

export interface ResumableUploadOptions {
  url: URL;
  method: string;
  sizeBytes: number;
  /** Opens the build from byte `offset` on (0 for the whole build). */
  open(offset: number): Readable;
  headers?: Record<string, string>;
  /** Where the first PUT starts (`rockit push --resume`: the server's `receivedBytes`); default 0. */
  startAt?: number;
  /** Called with the bytes the server has or is being sent, out of `sizeBytes` (may go back after a break). */
  onProgress?: (bytes: number) => void;
  /** Called before each resume, with the reason and where it resumes. */
  onResume?: (info: { attempt: number; fromBytes: number; reason: string }) => void;
  /** Called when asking the server how much arrived failed and will be asked again (a server restarting). */
  onRetry?: (info: { attempt: number; reason: string; waitMs: number }) => void;
  /**
   * Tries after a failure (default 10): resumes and "how much arrived?" questions together; each
   * waits longer than the one before (1 s, 2 s, 4 s, … up to 30 s), about 3 minutes in all.
   */
  maxResumes?: number;
  sleep?: (ms: number) => Promise<void>;
  idleTimeoutMs?: number;
}

/** Thrown when the resumes run out: the upload is still open on the server and can be resumed later. */
export class UploadStalledError extends Error {
  constructor(
    message: string,
    /** Bytes the server held at the last answer (null: it never answered). */
    readonly receivedBytes: number | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UploadStalledError';
  }
}

/** Waits between questions of a resumable upload: 1 s doubling, at most 30 s, no jitter (one client). */
const RESUME_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 1000, factor: 2, maxMs: 30_000, jitter: 0 });

/**
 * Uploads a build so that a broken connection costs only what the server had not stored: after a
 * network failure (or a server answer that it kept less than was sent) it asks the upload URL how
 * many bytes the server holds (`GET`) and sends the rest with `Content-Range: bytes first-last/total`.
 * The question itself is asked again while the server is unreachable or failing (a restart), with
 * the same backoff. A URL that cannot answer that question (a pre-signed URL on another host) gets
 * one plain PUT, as `uploadStream` does. Throws `UploadStalledError` when the tries run out (the
 * upload stays open: resume it later), and the error itself, at once, for an answer that no resume
 * can change (too large, expired, unknown upload).
 */
export async function uploadResumable(opts: ResumableUploadOptions): Promise<UploadResult> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const maxResumes = opts.maxResumes ?? 10;
  let offset = opts.startAt ?? 0;
  let tries = 0;
  let known: number | null = opts.startAt ?? null;
  const stalled = (failure: unknown) =>
    new UploadStalledError(`${(failure as Error).message} (gave up after ${tries} tries)`, known, { cause: failure });
  for (;;) {
    const body = opts.open(offset);
    const from = offset;
    let failure: unknown;
    try {
      const res = await uploadStream({
        url: opts.url,
        method: opts.method,
        body,
        sizeBytes: opts.sizeBytes - from,
        headers: { ...opts.headers, ...(from > 0 ? { 'content-range': `bytes ${from}-${opts.sizeBytes - 1}/${opts.sizeBytes}` } : {}) },
        onProgress: (sent) => opts.onProgress?.(from + sent),
        ...(opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
      });
      const upload = res.envelope?.upload as Partial<UploadStatus> | undefined;
      // No `upload` in the answer: a server (or store) that takes the body whole; done.
      if (!upload || upload.state === 'received') return res;
      if (typeof upload.receivedBytes === 'number') known = upload.receivedBytes;
      failure = new Error(`the server kept ${upload.receivedBytes} of ${opts.sizeBytes} bytes`);
    } catch (err) {
      body.destroy();
      if (!isResumable(err)) throw err;
      failure = err;
    }
    // How much arrived? Asked until the server answers (it may be restarting) or the tries run out.
    let status: UploadStatus | null = null;
    while (status === null) {
      if (tries >= maxResumes) throw stalled(failure);
      tries += 1;
      const waitMs = backoffDelayMs(RESUME_BACKOFF, tries);
      await sleep(waitMs);
      try {
        status = await uploadStatus(opts.url);
      } catch (err) {
        // A URL that does not answer the question at all (another host's pre-signed URL): no resume.
        if (!(err instanceof NetworkError) && !(err instanceof ApiError && err.status >= 500)) throw failure;
        failure = err;
        opts.onRetry?.({ attempt: tries, reason: err.message, waitMs: backoffDelayMs(RESUME_BACKOFF, tries + 1) });
      }
    }
    known = status.receivedBytes;
    if (status.state === 'received') return { status: 200, envelope: { status: 'success', upload: status } };
    if (status.state !== 'waiting') throw failure;
    offset = status.receivedBytes;
    opts.onResume?.({ attempt: tries, fromBytes: offset, reason: (failure as Error).message });
  }
}

/**
 * `GET` of an upload URL on our server: how much it holds. Throws `NetworkError` when the server
 * cannot be reached, `ApiError` for an error answer, and a plain Error when the URL answers
 * something else (it is not our upload URL).
 */
export async function uploadStatus(url: URL): Promise<UploadStatus> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { headers: { accept: 'application/json', 'user-agent': USER_AGENT }, signal: AbortSignal.timeout(30_000) });
    text = await res.text();
  } catch (err) {
    throw new NetworkError(`cannot reach ${url.origin}: ${describeFetchError(err)}`, { cause: err });
  }
  if (!res.ok) {
    // toEnvelope throws an ApiError for every non-2xx answer.
    toEnvelope(res.status, res.statusText, text, res.headers.get('x-request-id'));
  }
  let u: Partial<UploadStatus> | undefined;
  try {
    u = (JSON.parse(text) as { upload?: Partial<UploadStatus> }).upload;
  } catch {
    u = undefined;
  }
  if (!u || typeof u.receivedBytes !== 'number' || (u.state !== 'waiting' && u.state !== 'received' && u.state !== 'expired')) {
    throw new Error(`the upload URL did not say how much it holds (HTTP ${res.status})`);
  }
  return { state: u.state, receivedBytes: u.receivedBytes };
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

/** A broken connection, a server error, or the server's own word that the body broke off or another PUT still holds the upload. */
function isResumable(err: unknown): boolean {
  if (err instanceof NetworkError) return true;
  if (!(err instanceof ApiError)) return false;
  if (err.status >= 500) return true;
  if (err.error === 'invalid-param' && err.param === 'body') return true;
  return err.error === 'invalid-state' && typeof err.details.receivedBytes === 'number';
}
