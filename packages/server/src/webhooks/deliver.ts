/**
 * One HTTP delivery attempt of a subscription event: `POST url` with a JSON body. The caller
 * (a queue task) decides about retries with `backoff.ts`; this module never retries.
 *
 * Invariants: never throws (every outcome is a `DeliveryResult`); only 2xx is success (redirects
 * are not followed and count as failures, so a receiver cannot bounce us elsewhere); results and
 * error texts never contain the URL, which may itself be a secret (Slack webhook URLs are).
 */

export interface DeliveryRequest {
  url: string;
  /** The exact JSON text to send (it is what the signature's sha256 covers). */
  body: string;
  /** Extra headers, e.g. the signature header. */
  headers?: Record<string, string>;
  /** Whole-attempt limit: connect, send, and receiving the status line. */
  timeoutMs: number;
  /** Cancels the attempt (e.g. worker shutdown); reported as an error like a timeout. */
  signal?: AbortSignal;
}

export interface DeliveryResult {
  ok: boolean;
  /** Present when the receiver answered. */
  httpStatus?: number;
  /** Why it failed, for people and the subscription's recent deliveries; absent on success. */
  error?: string;
  /** Wall time of the attempt, milliseconds. */
  ms: number;
}

/** Bytes of a receiver's answer we read (and discard) before closing, to reuse the connection. */
const MAX_DRAIN_BYTES = 64 * 1024;

function causeCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

async function drain(res: Response): Promise<void> {
  if (!res.body) return;
  const reader = res.body.getReader();
  let seen = 0;
  try {
    while (seen < MAX_DRAIN_BYTES) {
      const { done, value } = await reader.read();
      if (done) return;
      seen += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The status is what counts; a broken body after it changes nothing.
  }
}

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
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'rockit-edge-webhooks/1', ...request.headers },
      body: request.body,
      redirect: 'manual',
      signal,
    });
    await drain(res);
    if (res.status >= 200 && res.status < 300) return { ok: true, httpStatus: res.status, ms: ms() };
    return { ok: false, httpStatus: res.status, error: `receiver answered HTTP ${res.status}`, ms: ms() };
  } catch (err) {
    if (timeout.aborted) return { ok: false, error: `no answer within ${request.timeoutMs} ms`, ms: ms() };
    if (request.signal?.aborted) return { ok: false, error: 'delivery canceled', ms: ms() };
    const code = causeCode(err);
    return { ok: false, error: code ? `connection failed (${code})` : 'connection failed', ms: ms() };
  } finally {
    timeout.removeEventListener('abort', abort);
    request.signal?.removeEventListener('abort', abort);
  }
}
