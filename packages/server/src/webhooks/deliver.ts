/**
 * One HTTP delivery attempt of a subscription event: `POST url` with a JSON body. The caller
 * (a queue task) decides about retries with WEBHOOK_RETRY_POLICY (queue/retry-policy.ts); this module never retries.
 *
 * Invariants: never throws (every outcome is a `DeliveryResult`); only 2xx is success (redirects
 * are not followed and count as failures, so a receiver cannot bounce us elsewhere); results and
 * error texts never contain the URL, which may itself be a secret (Slack webhook URLs are).
 *
 * SSRF guard: the target's host is resolved once per attempt, every address is checked against
 * `addressPolicy`, and the connection is made to those checked addresses only (no second DNS
 * lookup between check and connect). A refused target is a failed attempt that sends nothing.
 */
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { AddressRefusedError, type AddressPolicy, type HostLookup } from '../net/address-policy.js';
import { pinnedRequest } from '../net/http-client.js';

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

/** Reads (and discards) at most MAX_DRAIN_BYTES of an answer; a broken body changes nothing. */
async function drain(body: Readable): Promise<void> {
  let seen = 0;
  body.on('data', (chunk: Buffer) => {
    seen += chunk.byteLength;
    if (seen >= MAX_DRAIN_BYTES) body.destroy();
  });
  await finished(body).catch(() => {});
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
    // Redirects are never followed (maxRedirects 0): a 3xx is the receiver's answer, a failure.
    const res = await pinnedRequest({
      url,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'rockit-edge-webhooks/1', ...request.headers },
      body: Buffer.from(request.body, 'utf8'),
      signal,
      maxRedirects: 0,
      connectTimeoutMs: request.timeoutMs,
      ...(request.addressPolicy ? { addressPolicy: request.addressPolicy } : {}),
      ...(request.lookup ? { lookup: request.lookup } : {}),
    });
    // An abort while draining keeps the status.
    await drain(res.body);
    const status = res.status;
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
