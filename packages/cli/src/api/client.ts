// A small typed client for the ROCKIT Edge backend API over node's fetch.
//
// Contract (spec/api.md §1.2, §2): every answer is an envelope; a success has `status: "success"`,
// anything else becomes an `ApiError` carrying the HTTP status, the stable `error` name, the
// server's message, `param` and the request id (from the body's `requestId` or the `x-request-id`
// header). Session credentials are exchanged for a 5-minute auth token on first use and again
// shortly before it lapses (judged on the server's clock via the `Date` header) or when the server
// answers `401 token-expired`; API-key credentials send the documented trio on every request.
// Only GETs are retried (network failures, timeouts, 502/503/504): they are idempotent, the rest are not.
import type { AuthAnswer, ListBody, SuccessBody, TokenDto } from '@rockit/contract';
import { backoffDelayMs } from '@rockit/engine';

export const USER_AGENT = 'rockit-cli/0.1.0';

/** Who the client speaks for. `none` only reaches unprotected endpoints such as `/be/v1/login`. */
export type ClientCredentials =
  | { kind: 'none' }
  | { kind: 'session'; sessionToken: string }
  | { kind: 'apiKey'; orgName: string; username: string; apiKey: string };

export interface ApiClientOptions {
  /** Base URL of the installation, e.g. `https://edge.example.com` (a path prefix is kept). */
  server: string;
  credentials: ClientCredentials;
  fetch?: typeof fetch;
  /** Extra attempts for GETs after a network failure or 502/503/504. Default 3. */
  retries?: number;
  /** First retry delay; doubles each time. Default 500 ms. */
  retryDelayMs?: number;
  /** Per-attempt timeout. Default 30 s. */
  timeoutMs?: number;
  /** Refresh the auth token when fewer than this many seconds remain. Default 30. */
  refreshMarginSeconds?: number;
  /** Clock in milliseconds; tests replace it. */
  now?: () => number;
  /** Waits between retries; tests replace it. */
  sleep?: (ms: number) => Promise<void>;
}

/** An error answer of the API, or an answer that is not an envelope (`error: "unexpected-response"`). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  /** HTTP status of the answer. */
  readonly status: number;
  /** Stable machine name (api.md §1.2), e.g. `token-expired`, `not-found`. */
  readonly error: string;
  readonly param?: string;
  readonly requestId?: string;
  /** The extra fields of the error body (`permission`, `task`, ...). */
  readonly details: Record<string, unknown>;
  /** What the user can do about it, when the CLI knows. */
  hint?: string;

  constructor(init: {
    status: number;
    error: string;
    message: string;
    param?: string;
    requestId?: string;
    details?: Record<string, unknown>;
    hint?: string;
  }) {
    super(init.message);
    this.status = init.status;
    this.error = init.error;
    this.param = init.param;
    this.requestId = init.requestId;
    this.details = init.details ?? {};
    this.hint = init.hint;
  }
}

/** The server could not be reached (DNS, refused connection, reset, timeout) after all attempts. */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export type QueryValue = string | number | boolean | undefined | null | readonly (string | number)[];

export interface RequestOptions {
  query?: Record<string, QueryValue>;
  body?: unknown;
  /** Send credentials (default true). */
  auth?: boolean;
  headers?: Record<string, string>;
}

const RETRY_STATUSES = new Set([502, 503, 504]);

/** Parses a base URL; only http and https are accepted. Throws on anything else. */
export function parseServerUrl(server: string): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new Error(`invalid server URL: ${server}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`invalid server URL (http or https only): ${server}`);
  }
  url.search = '';
  url.hash = '';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

/** Turns any answer into an `ApiError` unless it is a success envelope. */
export function toEnvelope(status: number, statusText: string, text: string, requestIdHeader: string | null): SuccessBody {
  let body: unknown;
  try {
    body = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  const requestIdOf = (b: Record<string, unknown>): string | undefined =>
    typeof b.requestId === 'string' ? b.requestId : (requestIdHeader ?? undefined);
  if (isObject(body) && body.status === 'success' && status >= 200 && status < 300) {
    return body as SuccessBody;
  }
  if (isObject(body) && body.status === 'error' && typeof body.error === 'string') {
    const { status: _s, error, message, param, requestId: _r, ...details } = body;
    throw new ApiError({
      status,
      error,
      message: typeof message === 'string' ? message : error,
      param: typeof param === 'string' ? param : undefined,
      requestId: requestIdOf(body),
      details,
    });
  }
  const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  throw new ApiError({
    status,
    error: 'unexpected-response',
    message: `HTTP ${status}${statusText ? ' ' + statusText : ''}: ${snippet || '(empty body)'} — not a ROCKIT Edge API answer`,
    requestId: requestIdHeader ?? undefined,
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class ApiClient {
  readonly baseUrl: URL;
  private readonly credentials: ClientCredentials;
  private readonly fetchImpl: typeof fetch;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly timeoutMs: number;
  private readonly marginSeconds: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Current auth token and its expiry converted to the local clock (ms). */
  private authToken: { token: string; expiresLocalMs: number } | null = null;
  private pendingAuth: Promise<string> | null = null;

  constructor(opts: ApiClientOptions) {
    this.baseUrl = parseServerUrl(opts.server);
    this.credentials = opts.credentials;
    this.fetchImpl = opts.fetch ?? fetch;
    this.retries = opts.retries ?? 3;
    this.retryDelayMs = opts.retryDelayMs ?? 500;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.marginSeconds = opts.refreshMarginSeconds ?? 30;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** Absolute URL of an API path (`/be/v1/apps`), keeping any path prefix of the base URL. */
  url(path: string, query?: Record<string, QueryValue>): URL {
    const url = new URL(path.replace(/^\/+/, ''), this.baseUrl);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined || value === null) continue;
      if (Array.isArray(value)) for (const v of value) url.searchParams.append(key, String(v));
      else url.searchParams.append(key, String(value));
    }
    return url;
  }

  get<T extends SuccessBody>(path: string, query?: Record<string, QueryValue>): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  post<T extends SuccessBody>(path: string, body?: unknown, opts: Omit<RequestOptions, 'body'> = {}): Promise<T> {
    return this.request<T>('POST', path, { ...opts, body });
  }

  patch<T extends SuccessBody>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body });
  }

  delete<T extends SuccessBody>(path: string, query?: Record<string, QueryValue>): Promise<T> {
    return this.request<T>('DELETE', path, { query });
  }

  /**
   * Fetches every item of a collection (api.md §1.3), page by page (1000 per page), stopping at
   * `total` or at an empty page. `key` is the plural array name (`apps`, `tasks`...).
   */
  async listAll<T>(path: string, key: string, query: Record<string, QueryValue> = {}): Promise<T[]> {
    const items: T[] = [];
    for (;;) {
      const page = await this.get<ListBody & Record<string, unknown>>(path, { ...query, offset: items.length, limit: 1000 });
      const batch = page[key];
      if (!Array.isArray(batch)) {
        throw new ApiError({ status: 200, error: 'unexpected-response', message: `list answer without "${key}"` });
      }
      items.push(...(batch as T[]));
      if (batch.length === 0 || items.length >= page.total) return items;
    }
  }

  /**
   * Sends one request and returns its success envelope. Throws `ApiError` for error answers and
   * `NetworkError` when the server cannot be reached (after retries, for GETs).
   */
  async request<T extends SuccessBody>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const useAuth = opts.auth !== false && this.credentials.kind !== 'none';
    let refreshed = false;
    for (;;) {
      const authHeaders = useAuth ? await this.authHeaders() : {};
      const res = await this.send(method, this.url(path, opts.query), { ...authHeaders, ...opts.headers }, opts.body);
      try {
        return toEnvelope(res.status, res.statusText, res.text, res.requestId) as T;
      } catch (err) {
        if (err instanceof ApiError && res.status === 429 && err.hint === undefined) {
          const wait = retryAfterSeconds(res.retryAfter, Date.now());
          if (wait !== null) err.hint = `the server asks to wait ${formatWait(wait)} before trying again (Retry-After)`;
        }
        // An auth token may lapse between our check and the server's (clock skew, a slow request):
        // fetch a new one once and replay; JSON bodies are strings, so replaying is safe.
        if (
          err instanceof ApiError &&
          err.status === 401 &&
          err.error === 'token-expired' &&
          this.credentials.kind === 'session' &&
          useAuth &&
          !refreshed
        ) {
          refreshed = true;
          this.authToken = null;
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * The credential headers for a protected endpoint: the API-key trio, or a current auth token
   * (fetched with the session token when missing or about to lapse). Concurrent callers share one
   * `POST /be/v1/auth`.
   */
  async authHeaders(): Promise<Record<string, string>> {
    const c = this.credentials;
    if (c.kind === 'none') return {};
    if (c.kind === 'apiKey') {
      return { 'x-rockit-orgname': c.orgName, 'x-rockit-username': c.username, 'x-rockit-api-key': c.apiKey };
    }
    const current = this.authToken;
    if (current && current.expiresLocalMs - this.marginSeconds * 1000 > this.now()) {
      return { 'x-rockit-beauth-token': current.token };
    }
    this.pendingAuth ??= this.refreshAuth(c.sessionToken).finally(() => {
      this.pendingAuth = null;
    });
    return { 'x-rockit-beauth-token': await this.pendingAuth };
  }

  /** Whether `url` is served by the API server itself (so our credentials may be sent to it). */
  isSameOrigin(url: URL): boolean {
    return url.origin === this.baseUrl.origin;
  }

  private async refreshAuth(sessionToken: string): Promise<string> {
    const res = await this.send('POST', this.url('/be/v1/auth'), { 'x-rockit-besession-token': sessionToken }, undefined);
    let env: AuthAnswer;
    try {
      env = toEnvelope(res.status, res.statusText, res.text, res.requestId) as AuthAnswer;
    } catch (err) {
      if (err instanceof ApiError && (err.error === 'token-expired' || err.error === 'token-invalid')) {
        err.hint = 'the login session is no longer valid; run `rockit login` again';
      }
      throw err;
    }
    const auth = env.auth as TokenDto | undefined;
    if (!auth || typeof auth.token !== 'string' || typeof auth.expires !== 'number') {
      throw new ApiError({ status: res.status, error: 'unexpected-response', message: 'auth answer without auth.token/expires' });
    }
    // `expires` is on the server's clock; shift it by the observed skew so a fast or slow local
    // clock neither refreshes on every request nor sends lapsed tokens.
    const serverNowMs = res.date ?? this.now();
    const skewMs = this.now() - serverNowMs;
    this.authToken = { token: auth.token, expiresLocalMs: auth.expires * 1000 + skewMs };
    return auth.token;
  }

  private async send(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: unknown,
  ): Promise<{ status: number; statusText: string; text: string; requestId: string | null; date: number | null; retryAfter: string | null }> {
    const idempotent = method === 'GET' || method === 'HEAD';
    const attempts = idempotent ? this.retries + 1 : 1;
    const allHeaders: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT, ...headers };
    let payload: string | undefined;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      allHeaders['content-type'] = 'application/json';
    }
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await this.sleep(backoffDelayMs({ baseMs: this.retryDelayMs, factor: 2, maxMs: Infinity, jitter: 0 }, attempt));
      let res: Response;
      let text: string;
      try {
        res = await this.fetchImpl(url, {
          method,
          headers: allHeaders,
          body: payload,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        text = await res.text();
      } catch (err) {
        lastError = err;
        continue;
      }
      if (idempotent && RETRY_STATUSES.has(res.status) && attempt < attempts - 1) {
        lastError = new Error(`HTTP ${res.status}`);
        continue;
      }
      const dateHeader = res.headers.get('date');
      const date = dateHeader ? Date.parse(dateHeader) : NaN;
      return {
        status: res.status,
        statusText: res.statusText,
        text,
        requestId: res.headers.get('x-request-id'),
        date: Number.isFinite(date) ? date : null,
        retryAfter: res.headers.get('retry-after'),
      };
    }
    throw new NetworkError(`cannot reach ${url.origin} (${method} ${url.pathname}): ${describeCause(lastError)}`, {
      cause: lastError,
    });
  }
}

function describeCause(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    if (err.name === 'TimeoutError') return 'timed out';
    if (cause instanceof Error) return `${err.message}: ${(cause as { code?: string }).code ?? cause.message}`;
    return err.message;
  }
  return String(err);
}

/** Seconds a `Retry-After` header asks to wait (delta-seconds or an HTTP date), or null when absent or unreadable. */
export function retryAfterSeconds(header: string | null, nowMs: number): number | null {
  if (header === null) return null;
  const v = header.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - nowMs) / 1000)) : null;
}

/** A wait for people: `45 s`, `3 min 20 s`, `2 h 5 min`. */
export function formatWait(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min${seconds % 60 ? ` ${seconds % 60} s` : ''}`;
  const m = Math.floor((seconds % 3600) / 60);
  return `${Math.floor(seconds / 3600)} h${m ? ` ${m} min` : ''}`;
}
