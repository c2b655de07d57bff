// The dltar step's http/https source, through the server's one pinned HTTP client (net/http-client.ts).
import { HopRefusedError, RedirectRefusedError, pinnedRequest, type PinnedResponse } from '../../net/http-client.js';
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
  let res: PinnedResponse;
  try {
    res = await pinnedRequest({
      url,
      method: 'GET',
      headers: REQUEST_HEADERS,
      signal: controller.signal,
      maxRedirects: MAX_REDIRECTS,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      decodeContent: true,
      ...(options.addressPolicy ? { addressPolicy: options.addressPolicy } : {}),
      ...(options.lookup ? { lookup: options.lookup } : {}),
    });
  } catch (err) {
    close();
    throw requestError(err, shown) ?? classify(err, 0);
  }
  const status = res.status;
  if (!hasBody(status)) {
    close();
    res.body.destroy();
    throw new StepError('download-failed', `${shown}: HTTP ${status}`, {
      httpStatus: status,
      exitCode: DownloadExitCode.HttpError,
    });
  }
  const lengthHeader = res.headers['content-length'];
  // A Content-Length of a content-encoded body counts the encoded bytes: not comparable.
  if (typeof lengthHeader === 'string' && /^\d+$/.test(lengthHeader) && !res.headers['content-encoding']) {
    contentLength = Number(lengthHeader);
  }
  const early = contentLength === undefined ? undefined : checkAnnounced(contentLength, options, shown);
  if (early) {
    close();
    res.body.destroy();
    throw early;
  }
  const body = res.body;
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
/** Connecting (TCP, and the TLS handshake for https) gives up after this long (exit code 28), like fetch did. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Sent with every request; the client undoes the encodings (as fetch did). */
const REQUEST_HEADERS = { accept: '*/*', 'accept-encoding': 'gzip, deflate, br', 'user-agent': 'rockit-edge-dltar/1' };

/** The client's refusals (address, redirect) as the step's errors; undefined for any other error. */
function requestError(err: unknown, shown: string): StepError | undefined {
  if (err instanceof StepError) return err;
  if (err instanceof HopRefusedError) {
    return new StepError('download-failed', `${safeUrl(err.url)}: downloads from this address are not allowed`, {
      exitCode: DownloadExitCode.CouldNotConnect,
      retryable: false,
    });
  }
  if (err instanceof RedirectRefusedError && err.reason === 'too-many-redirects') {
    return new StepError('download-failed', `${shown}: too many redirects`, { httpStatus: err.status, exitCode: DownloadExitCode.HttpError, retryable: false });
  }
  if (err instanceof RedirectRefusedError) {
    return new StepError('download-failed', `${shown}: redirected to an unsupported scheme`, { exitCode: DownloadExitCode.UnsupportedProtocol });
  }
  return undefined;
}

/** Whether an answer with this status is the build (fetch's `ok` with a body: 2xx except 204 and 205). */
const hasBody = (status: number): boolean => status >= 200 && status <= 299 && status !== 204 && status !== 205;

/** An abort reason as an Error (a stream must be destroyed with one). */
const asError = (reason: unknown): Error => (reason instanceof Error ? reason : new Error(String(reason)));
