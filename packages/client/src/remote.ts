// The remote side of an install: where release.json, images and patches are read from, and the download
// token when the app has keys. A `server` URL is either a rockit-edge server (files under /cdn/, auth at
// /client/v1/auth) or a plain depot / CDN origin (files at the origin prefix). Talks HTTP only, through the
// engine's HttpImageSource (range reads, retries with capped backoff and jitter).
import { CorruptionError, EngineError, HttpImageSource, httpPost, type HttpGetResponse, type HttpImageSourceOptions } from '@rockit/engine';
import { ClientError } from './errors.js';

/** The release pointer (docs/FORMATS.md, release.json format version 1). */
export interface Release {
  format: 'rockit-release';
  formatVersion: 1;
  orgName: string;
  appName: string;
  buildId: number;
  buildName: string;
  dxfName: string;
  image: { path: string; manifest: string; sizeBytes: number };
  patches: Array<{ fromBuildId: number; toBuildId: number; path: string; sizeBytes: number }>;
  created: number;
}

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/i;
const REL_PATH = /^(?:[0-9A-Za-z_][0-9A-Za-z._-]*\/)+$/;
export const RELEASE_MAX_BYTES = 1024 * 1024;
/** Renew the download token when it expires within this many seconds. */
const TOKEN_RENEW_SECONDS = 60;
/** The auth answer holds a token and the release pointer: a few kB; anything past this is not a real answer. */
const AUTH_ANSWER_MAX_BYTES = 4 * 1024 * 1024;

/** Validates a release.json document (refuses other formats, higher versions, paths outside the app's layout). */
export function parseRelease(bytes: Uint8Array, orgName: string, appName: string): Release {
  const bad = (why: string) => new ClientError('release-invalid', `release.json of ${orgName}/${appName}: ${why}`);
  let v: any;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  if (typeof v !== 'object' || v === null || v.format !== 'rockit-release') throw bad('not a release pointer');
  if (v.formatVersion !== 1) throw bad(`unsupported format version ${String(v.formatVersion)}`);
  if (v.orgName !== orgName || v.appName !== appName) throw bad('names another app');
  if (!Number.isSafeInteger(v.buildId) || v.buildId < 1 || typeof v.buildName !== 'string' || typeof v.dxfName !== 'string' || !/^b\d{4,}-t\d{3,}$/.test(v.dxfName)) throw bad('bad build fields');
  const img = v.image;
  const prefix = `dxf/${orgName}/${appName}/`;
  if (typeof img?.path !== 'string' || !REL_PATH.test(img.path) || !img.path.startsWith(prefix) || img.path.includes('..')) throw bad('bad image path');
  if (typeof img.manifest !== 'string' || !Number.isSafeInteger(img.sizeBytes) || img.sizeBytes < 0) throw bad('bad image fields');
  if (!Array.isArray(v.patches)) throw bad('bad patches');
  for (const p of v.patches) {
    if (!Number.isSafeInteger(p?.fromBuildId) || p.toBuildId !== v.buildId || !Number.isSafeInteger(p.sizeBytes) || p.sizeBytes < 0) throw bad('bad patch fields');
    if (typeof p.path !== 'string' || !REL_PATH.test(p.path) || !p.path.startsWith(`pat/${orgName}/${appName}/`) || p.path.includes('..')) throw bad('bad patch path');
  }
  return v as Release;
}

export interface RemoteOptions {
  /** Server or depot base URL. */
  server: string;
  orgName: string;
  appName: string;
  /** Download (access) key for apps with keys. */
  key?: string;
  http?: HttpImageSourceOptions;
}

/** Resolves the file layout and keeps the download token fresh. */
export class Remote {
  readonly server: string;
  readonly orgName: string;
  readonly appName: string;
  private readonly key?: string;
  private readonly http: HttpImageSourceOptions;
  /** Base URL of the published files: `<server>/cdn/` or the depot's own prefix. */
  private fileBase?: string;
  private token?: { token: string; expires: number };

  constructor(opts: RemoteOptions) {
    if (!NAME.test(opts.orgName) || !NAME.test(opts.appName)) throw new ClientError('invalid-argument', `not an org/app name: ${opts.orgName}/${opts.appName}`);
    let u: URL;
    try {
      u = new URL(opts.server);
    } catch {
      throw new ClientError('invalid-argument', `not a URL: ${opts.server}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ClientError('invalid-argument', `not an http(s) URL: ${opts.server}`);
    if (!u.pathname.endsWith('/')) u.pathname += '/';
    u.search = '';
    this.server = u.href;
    this.orgName = opts.orgName;
    this.appName = opts.appName;
    this.key = opts.key;
    this.http = opts.http ?? {};
  }

  get keyed(): boolean {
    return this.key !== undefined;
  }

  private query = (): Record<string, string> => (this.token ? { token: this.token.token } : {});

  /** A reader of files under `path` (relative to the file base, ending in '/'). */
  source(path: string): HttpImageSource {
    if (!this.fileBase) throw new Error('Remote.release() must be called first');
    return new HttpImageSource(new URL(path, this.fileBase), { ...this.http, query: this.query });
  }

  /** Renews the download token when it is about to expire (long downloads outlive a token). */
  async freshen(): Promise<void> {
    if (this.key !== undefined && (!this.token || this.token.expires - Date.now() / 1000 < TOKEN_RENEW_SECONDS)) await this.auth();
  }

  private async auth(): Promise<Release | undefined> {
    // node:http rather than fetch: the first fetch() loads undici, which costs a launcher 0.1–0.4 s before its
    // first byte.
    const payload = Buffer.from(JSON.stringify({ orgName: this.orgName, appName: this.appName, key: this.key }));
    let res: HttpGetResponse;
    let body: any;
    try {
      res = await httpPost(new URL('client/v1/auth', this.server), { 'content-type': 'application/json' }, payload, this.http.timeoutMs ?? 60_000);
      const text = Buffer.from(await res.body(AUTH_ANSWER_MAX_BYTES)).toString('utf8');
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    } catch (err) {
      throw new ClientError('server-unavailable', `cannot reach ${this.server}: ${(err as Error).message}`, true);
    }
    if (res.status === 401 || res.status === 403) throw new ClientError('key-rejected', `the server refused the download key for ${this.orgName}/${this.appName} (${body?.error ?? res.status})`);
    if (res.status < 200 || res.status > 299 || typeof body?.auth?.token !== 'string' || !Number.isFinite(body.auth.expires)) {
      throw new ClientError('server-unavailable', `POST /client/v1/auth answered HTTP ${res.status}${body?.error ? ` (${body.error})` : ''}`, res.status >= 500);
    }
    this.token = { token: body.auth.token, expires: body.auth.expires };
    this.fileBase = new URL('cdn/', this.server).href;
    return body.release ? parseRelease(Buffer.from(JSON.stringify(body.release)), this.orgName, this.appName) : undefined;
  }

  /**
   * The current release. With a key: from /client/v1/auth (a token for the files too). Without: release.json
   * under `<server>/cdn/`, else under `<server>/` (a plain depot or CDN origin).
   */
  async release(): Promise<Release> {
    if (this.key !== undefined) {
      const r = await this.auth();
      if (r) return r;
      return this.readRelease(this.fileBase!);
    }
    const bases = this.fileBase ? [this.fileBase] : [new URL('cdn/', this.server).href, this.server];
    let lastMissing: unknown;
    for (const base of bases) {
      try {
        const r = await this.readRelease(base);
        this.fileBase = base;
        return r;
      } catch (err) {
        if (err instanceof CorruptionError) {
          lastMissing = err;
          continue;
        }
        throw err;
      }
    }
    throw new ClientError('release-invalid', `no release of ${this.orgName}/${this.appName} at ${this.server} (${(lastMissing as Error)?.message ?? 'not found'})`);
  }

  private async readRelease(base: string): Promise<Release> {
    const src = new HttpImageSource(new URL(`dxf/${this.orgName}/${this.appName}/`, base), { ...this.http, query: this.query });
    try {
      return parseRelease(await src.readFile('release.json', RELEASE_MAX_BYTES), this.orgName, this.appName);
    } catch (err) {
      throw mapHttpError(err);
    }
  }
}

/** Network errors of the engine's HTTP source as ClientErrors (401/403: a key is needed or was refused). */
export function mapHttpError(err: unknown): unknown {
  if (err instanceof EngineError && err.code === 'source-forbidden') {
    return new ClientError('key-required', 'the server refused the download: the app needs a valid download key (--key)');
  }
  if (err instanceof EngineError && err.code === 'source-unavailable') {
    return new ClientError('server-unavailable', `${err.message} (run the command again to resume)`, true);
  }
  return err;
}
