// The console's only way to the server: the public API (api.md), same origin. A signed-in user holds a
// session token (24 h); every call carries a 5-minute auth token that is renewed silently before it
// lapses (and once more when the server says it expired). When the session itself is gone, the
// listeners hear `expired` and the console shows its "session expired" page.

export interface ApiErrorBody {
  status: 'error';
  error: string;
  message: string;
  param?: string;
  permission?: string;
  [k: string]: unknown;
}

/** An error answer of the API (or a network failure: error `network`). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(readonly status: number, readonly body: ApiErrorBody) {
    super(body.message);
  }
  get code(): string {
    return this.body.error;
  }
  get param(): string | undefined {
    return this.body.param;
  }
}

export interface Session {
  orgName: string;
  username: string;
  token: string;
  expires: number;
  permissions: Record<string, number>;
}

type Listener = (event: 'expired' | 'signed-out' | 'signed-in') => void;

const STORE = 'rockit-console-session';
const nowSec = () => Math.floor(Date.now() / 1000);

async function parse(res: Response): Promise<any> {
  const text = await res.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const env: ApiErrorBody = body && body.status === 'error'
      ? body
      : { status: 'error', error: 'unexpected-response', message: `the server answered HTTP ${res.status}` };
    throw new ApiError(res.status, env);
  }
  return body;
}

export class Api {
  session: Session | null = null;
  private auth: { token: string; expires: number } | null = null;
  private renewing: Promise<string> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private listeners = new Set<Listener>();

  constructor(private readonly base = '', private readonly storage: Storage | null = typeof sessionStorage === 'undefined' ? null : sessionStorage) {
    const saved = this.storage?.getItem(STORE);
    if (saved) {
      try {
        this.session = JSON.parse(saved) as Session;
      } catch {
        this.session = null;
      }
    }
  }

  on(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private emit(e: Parameters<Listener>[0]): void {
    for (const l of this.listeners) l(e);
  }

  async login(orgName: string, username: string, password: string): Promise<Session> {
    const res = await fetchJson(`${this.base}/be/v1/login`, { method: 'POST', body: { orgName, username, password } });
    this.session = { orgName, username, token: res.session.token, expires: res.session.expires, permissions: res.permissions ?? {} };
    this.storage?.setItem(STORE, JSON.stringify(this.session));
    this.auth = null;
    await this.authToken();
    this.emit('signed-in');
    return this.session;
  }

  async logout(): Promise<void> {
    const s = this.session;
    this.clear();
    if (s) await fetchJson(`${this.base}/be/v1/logout`, { method: 'POST', headers: { 'x-rockit-besession-token': s.token } }).catch(() => undefined);
    this.emit('signed-out');
  }

  private clear(): void {
    this.session = null;
    this.auth = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.storage?.removeItem(STORE);
  }

  private expire(): void {
    this.clear();
    this.emit('expired');
  }

  /** A valid auth token: the held one, or a fresh one traded for the session. */
  async authToken(force = false): Promise<string> {
    if (!force && this.auth && this.auth.expires - nowSec() > 20) return this.auth.token;
    if (this.renewing) return this.renewing;
    const s = this.session;
    if (!s) throw new ApiError(401, { status: 'error', error: 'token-missing', message: 'not signed in' });
    this.renewing = (async () => {
      try {
        const res = await fetchJson(`${this.base}/be/v1/auth`, { method: 'POST', headers: { 'x-rockit-besession-token': s.token } });
        this.auth = { token: res.auth.token, expires: res.auth.expires };
        this.schedule();
        return res.auth.token as string;
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) this.expire();
        throw e;
      } finally {
        this.renewing = null;
      }
    })();
    return this.renewing;
  }

  /** Renews the auth token a minute before it lapses, so a console left open stays signed in. */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    if (!this.auth) return;
    const ms = Math.max(5_000, (this.auth.expires - nowSec() - 60) * 1000);
    this.timer = setTimeout(() => void this.authToken(true).catch(() => undefined), ms);
  }

  async call<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const token = await this.authToken();
    try {
      return await fetchJson(`${this.base}${path}`, { method, body, headers: { 'x-rockit-beauth-token': token } });
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && (e.code === 'token-expired' || e.code === 'token-invalid')) {
        const fresh = await this.authToken(true);
        return fetchJson(`${this.base}${path}`, { method, body, headers: { 'x-rockit-beauth-token': fresh } });
      }
      throw e;
    }
  }

  get = <T = any>(path: string) => this.call<T>('GET', path);
  post = <T = any>(path: string, body?: unknown) => this.call<T>('POST', path, body ?? {});
  patch = <T = any>(path: string, body: unknown) => this.call<T>('PATCH', path, body);
  del = <T = any>(path: string) => this.call<T>('DELETE', path);

  can(resource: string, bit: number): boolean {
    return ((this.session?.permissions[resource] ?? 0) & bit) === bit;
  }
}

export async function fetchJson(url: string, opts: { method: string; body?: unknown; headers?: Record<string, string> }): Promise<any> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: opts.method,
      headers: { accept: 'application/json', ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    });
  } catch (e) {
    throw new ApiError(0, { status: 'error', error: 'network', message: `cannot reach the server: ${(e as Error).message}` });
  }
  return parse(res);
}

/** `?a=1&b=2` from defined values. */
export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}
