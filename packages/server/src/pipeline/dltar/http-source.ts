// The dltar step's http/https source.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline as chain, type Readable, type Transform } from 'node:stream';
import { constants as zlib, createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';

import { AddressRefusedError, pinnedLookup, resolveChecked, urlHost, type ResolvedAddress } from '../../net/address-policy.js';
import { DownloadExitCode, StepError, canceledError } from '../errors.js';
import type { ObtainTarOptions } from '../dltar.js';
import { networkError, safeUrl } from './download-errors.js';
import { checkAnnounced, type Source } from './verify.js';

/** Opens an http/https URL (see `obtainTar`). */
export async function openHttp(options: ObtainTarOptions, url: URL, shown: string): Promise<Source> {
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
