/**
 * One HTTP delivery attempt of a subscription event: `POST url` with a JSON body. The caller
 * (a queue task) decides about retries with `backoff.ts`; this module never retries.
 *
 * Invariants: never throws (every outcome is a `DeliveryResult`); only 2xx is success (redirects
 * are not followed and count as failures, so a receiver cannot bounce us elsewhere); results and
 * error texts never contain the URL, which may itself be a secret (Slack webhook URLs are).
 *
 * SSRF guard: the target's host is resolved once per attempt, every address is checked against
 * `addressPolicy`, and the connection is made to those checked addresses only (no second DNS
 * lookup between check and connect). A refused target is a failed attempt that sends nothing.
 */
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { finished } from 'node:stream/promises';
import { AddressRefusedError, pinnedLookup, resolveChecked, urlHost, type AddressPolicy, type HostLookup, type ResolvedAddress } from '../net/address-policy.js';

export interface DeliveryRequest {
  url: string;
  /** The exact JSON text to send (it is what the signature's sha256 covers). */
  body: string;
  /** Extra headers, e.g. the signature header. */
  headers?: Record<string, string>;
  /** Whole-attempt limit: resolving the host, connect, send, and receiving the status line. */
  timeoutMs: number;
  /** Cancels the attempt (e.g. worker shutdown); reported as an error like a timeout. */
  signal?: AbortSignal;
  /** Which resolved addresses may be reached (e.g. `isPublicAddress`); absent: any. */
  addressPolicy?: AddressPolicy;
  /** Resolves the target's host; default: the system resolver. Injectable for tests. */
  lookup?: HostLookup;
}

export interface DeliveryResult {
  ok: boolean;
  /** Present when the receiver answered. */
  httpStatus?: number;
  /** Why it failed, for people and the subscription's recent deliveries; absent on success. */
  error?: string;
  /** The errno of a connect failure (for the server's log; never shown to org users). */
  errorCode?: string;
  /** Wall time of the attempt, milliseconds. */
  ms: number;
}

/** Bytes of a receiver's answer we read (and discard) before closing, to reuse the connection. */
const MAX_DRAIN_BYTES = 64 * 1024;

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Settles when `signal` aborts (rejecting with its reason) or `work` settles, whichever is first. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Reads (and discards) at most MAX_DRAIN_BYTES of an answer; a broken body changes nothing. */
async function drain(res: IncomingMessage): Promise<void> {
  let seen = 0;
  res.on('data', (chunk: Buffer) => {
    seen += chunk.byteLength;
    if (seen >= MAX_DRAIN_BYTES) res.destroy();
  });
  await finished(res).catch(() => {});
}

/**
 * POSTs `body` to `url`, connecting only to `addresses`; resolves with the answer's status once its
 * body is drained (an abort while draining keeps the status), rejects when no answer came.
 */
function post(url: URL, addresses: ResolvedAddress[], body: Buffer, headers: OutgoingHttpHeaders, signal: AbortSignal): Promise<number> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<number>((resolve, reject) => {
    let answered = false;
    const req = send(url, { method: 'POST', headers, signal, lookup: pinnedLookup(addresses) }, (res) => {
      answered = true;
      void drain(res).then(() => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.end(body);
  });
}

/**
 * One attempt (see the module comment). Failures, as `error`: `invalid URL`, `URL scheme must be
 * http or https`, `target resolves to a private address`, `receiver answered HTTP <status>`,
 * `no answer within <timeoutMs> ms`, `delivery canceled`, `connection failed` (the errno in
 * `errorCode`, for the server's log only).
 */
export async function deliver(request: DeliveryRequest): Promise<DeliveryResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return { ok: false, error: 'invalid URL', ms: ms() };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, error: 'URL scheme must be http or https', ms: ms() };
  }
  const timeout = AbortSignal.timeout(request.timeoutMs);
  // Combined by hand: AbortSignal.any needs Node 20.3.
  const combined = new AbortController();
  const abort = () => combined.abort();
  timeout.addEventListener('abort', abort, { once: true });
  request.signal?.addEventListener('abort', abort, { once: true });
  if (request.signal?.aborted) combined.abort();
  const signal = combined.signal;
  try {
    const addresses = await untilAborted(resolveChecked(urlHost(url), request.addressPolicy, request.lookup), signal);
    const body = Buffer.from(request.body, 'utf8');
    const headers: OutgoingHttpHeaders = {
      'content-type': 'application/json',
      'content-length': body.byteLength,
      'user-agent': 'rockit-edge-webhooks/1',
      ...request.headers,
    };
    const status = await post(url, addresses, body, headers, signal);
    if (status >= 200 && status < 300) return { ok: true, httpStatus: status, ms: ms() };
    return { ok: false, httpStatus: status, error: `receiver answered HTTP ${status}`, ms: ms() };
  } catch (err) {
    if (err instanceof AddressRefusedError) return { ok: false, error: err.message, ms: ms() };
    if (timeout.aborted) return { ok: false, error: `no answer within ${request.timeoutMs} ms`, ms: ms() };
    if (request.signal?.aborted) return { ok: false, error: 'delivery canceled', ms: ms() };
    // One answer for every connect failure (refused, unreachable, no such host, TLS): the errno
    // would tell closed from filtered ports of whatever a subscription names (a port scanner).
    const code = errorCode(err);
    return { ok: false, error: 'connection failed', ...(code ? { errorCode: code } : {}), ms: ms() };
  } finally {
    timeout.removeEventListener('abort', abort);
    request.signal?.removeEventListener('abort', abort);
  }
}
