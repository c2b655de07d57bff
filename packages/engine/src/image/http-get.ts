// GET (and one small POST) over node:http(s) with keep-alive agents, for HttpImageSource and the launcher's auth. Not `fetch`: in Node 20 the first fetch()
// loads undici (~100 ms of CPU, several times that on a busy machine), which a launcher pays before its first
// byte. Every failure is an HttpGetError: `retryable` for network errors, timeouts and cut-off bodies.
import http from 'node:http';
import type https from 'node:https';

export class HttpGetError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'HttpGetError';
  }
}

export interface HttpGetResponse {
  status: number;
  header(name: string): string | undefined;
  /**
   * The body, at most maxBytes: beyond them, rejects with tooLarge() or, without it, keeps the first maxBytes and
   * drops the rest (the connection is closed). HttpGetError (retryable) when the connection ends before the body.
   */
  body(maxBytes: number, tooLarge?: () => Error): Promise<Uint8Array>;
  /** Drops the body (the connection is closed). */
  discard(): void;
}

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 32 });
let httpsModule: Promise<{ mod: typeof https; agent: https.Agent }> | undefined;

/** node:https only when an https URL is read (loading TLS costs start-up time otherwise). */
function httpsTransport(): Promise<{ mod: typeof https; agent: https.Agent }> {
  httpsModule ??= import('node:https').then((mod) => ({ mod: mod.default, agent: new mod.default.Agent({ keepAlive: true, maxSockets: 32 }) }));
  return httpsModule;
}

/**
 * GET `url` with `headers`; resolves at the response head. The whole exchange (head and body) must finish
 * within `timeoutMs`. A request on a kept-alive connection the server closed meanwhile is sent again at once.
 */
export function httpGet(url: URL, headers: Record<string, string>, timeoutMs: number): Promise<HttpGetResponse> {
  return send(url, 'GET', headers, undefined, timeoutMs);
}

/**
 * POST `body` to `url`, like httpGet otherwise. Only for requests that are safe to send twice (the request is sent
 * again when a kept-alive connection turns out closed), such as exchanging a download key for a token.
 */
export function httpPost(url: URL, headers: Record<string, string>, body: Uint8Array, timeoutMs: number): Promise<HttpGetResponse> {
  return send(url, 'POST', { ...headers, 'content-length': String(body.length) }, body, timeoutMs);
}

async function send(url: URL, method: 'GET' | 'POST', headers: Record<string, string>, body: Uint8Array | undefined, timeoutMs: number): Promise<HttpGetResponse> {
  const t = url.protocol === 'https:' ? await httpsTransport() : { mod: http, agent: httpAgent };
  try {
    return await once(t.mod, t.agent, method, url, headers, body, timeoutMs);
  } catch (err) {
    if (err instanceof StaleSocketError) return once(t.mod, t.agent, method, url, headers, body, timeoutMs);
    throw err;
  }
}

/** A kept-alive connection dropped before the answer: sent again at once, then retryable like any network error. */
class StaleSocketError extends HttpGetError {
  constructor(message: string) {
    super(message, true);
  }
}

function once(
  mod: typeof http | typeof https,
  agent: http.Agent,
  method: 'GET' | 'POST',
  url: URL,
  headers: Record<string, string>,
  payload: Uint8Array | undefined,
  timeoutMs: number,
): Promise<HttpGetResponse> {
  return new Promise((resolve, reject) => {
    let failed: Error | undefined;
    const req = mod.request(url, { method, headers, agent });
    const timer = setTimeout(() => req.destroy(new HttpGetError(`timed out after ${timeoutMs} ms`, true)), timeoutMs);
    const fail = (err: Error): Error => {
      failed ??= err instanceof HttpGetError ? err : new HttpGetError((err as NodeJS.ErrnoException).code ?? err.message, true);
      return failed;
    };
    req.once('error', (err) => {
      clearTimeout(timer);
      // A kept-alive connection the server closed just before our request: not a failure of the server.
      if (req.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET') reject(fail(new StaleSocketError(err.message)));
      else reject(fail(err));
    });
    req.once('response', (res) => {
      let bodyStarted = false;
      resolve({
        status: res.statusCode ?? 0,
        header: (name) => {
          const v = res.headers[name.toLowerCase()];
          return Array.isArray(v) ? v.join(', ') : v;
        },
        discard: () => {
          clearTimeout(timer);
          res.destroy();
          req.destroy();
        },
        body: (maxBytes, tooLarge) => {
          if (bodyStarted) throw new Error('body read twice');
          bodyStarted = true;
          return new Promise<Uint8Array>((ok, ko) => {
            const len = Number(res.headers['content-length'] ?? NaN);
            // The declared length is only a hint for the buffer (a lying server cannot make us allocate more).
            let buf = new Uint8Array(Number.isSafeInteger(len) && len >= 0 && len <= maxBytes ? len : Math.min(maxBytes, 64 * 1024));
            let at = 0;
            let done = false;
            const finish = (err?: Error) => {
              if (done) return;
              done = true;
              clearTimeout(timer);
              if (err) {
                res.destroy();
                ko(err);
              } else ok(at === buf.length ? buf : buf.subarray(0, at));
            };
            res.on('data', (chunk: Buffer) => {
              if (at + chunk.length > maxBytes) {
                if (tooLarge) return finish(tooLarge());
                if (buf.length < maxBytes) {
                  const grown = new Uint8Array(maxBytes);
                  grown.set(buf.subarray(0, at));
                  buf = grown;
                }
                buf.set(chunk.subarray(0, maxBytes - at), at);
                at = maxBytes;
                finish();
                res.destroy();
                req.destroy();
                return;
              }
              if (at + chunk.length > buf.length) {
                const grown = new Uint8Array(Math.min(maxBytes, Math.max(buf.length * 2, at + chunk.length)));
                grown.set(buf.subarray(0, at));
                buf = grown;
              }
              buf.set(chunk, at);
              at += chunk.length;
            });
            res.once('end', () => finish());
            res.once('aborted', () => finish(failed ?? new HttpGetError('connection closed before the body ended', true)));
            res.once('error', (err) => finish(failed ?? fail(err)));
            res.once('close', () => {
              if (!res.complete) finish(failed ?? new HttpGetError('connection closed before the body ended', true));
            });
          });
        },
      });
    });
    req.end(payload);
  });
}
