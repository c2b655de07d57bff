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
  req.on('timeout', () => req.destroy(new Error('upload connection idle for too long')));

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
  return code === 'EPIPE' || code === 'ECONNRESET' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_PREMATURE_CLOSE';
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
