// Where an image is read from: a local folder or an http(s) base URL (range requests). Both return exactly
// the bytes asked for or throw: CorruptionError 'pack-missing' / 'pack-truncated' for packs, 'manifest' or
// 'image-json' for those files, EngineError 'source-unavailable' when the network keeps failing,
// EngineError 'source-forbidden' on HTTP 401/403 (a download token is missing, wrong or expired).
import { open, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CorruptionError, EngineError, type CorruptionKind } from '../errors.js';
import { IMAGE_JSON_NAME } from '../format/constants.js';
import { HttpGetError, httpGet, type HttpGetResponse } from './http-get.js';
import { backoffDelayMs } from '../util/backoff.js';

export interface ImageSource {
  /** For messages: the folder or URL. */
  readonly location: string;
  /** Reads a whole (small) file of the image, refusing more than maxBytes. */
  readFile(name: string, maxBytes: number): Promise<Uint8Array>;
  /** Reads exactly `length` bytes at `offset` of the named file (e.g. 'packs/<name>.rkp'). */
  readRange(name: string, offset: number, length: number): Promise<Uint8Array>;
  /** Optional: like readRange, into `into` (exactly into.length bytes), so the caller can reuse its buffers. */
  readRangeInto?(name: string, offset: number, into: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

function kindOf(name: string, what: 'missing' | 'short'): CorruptionKind {
  if (name.startsWith('packs/')) return what === 'missing' ? 'pack-missing' : 'pack-truncated';
  return name === IMAGE_JSON_NAME ? 'image-json' : 'manifest';
}

function checkName(name: string): void {
  if (!/^(packs\/)?[0-9A-Za-z_-][0-9A-Za-z._-]*$/.test(name)) throw new RangeError(`invalid image file name ${JSON.stringify(name)}`);
}

/** An image in a local folder. File handles are cached until close(). */
export class FolderImageSource implements ImageSource {
  readonly location: string;
  private readonly handles = new Map<string, Promise<FileHandle>>();

  constructor(dir: string) {
    this.location = resolve(dir);
  }

  private handle(name: string): Promise<FileHandle> {
    let h = this.handles.get(name);
    if (!h) {
      h = open(join(this.location, name), 'r');
      h.catch(() => this.handles.delete(name));
      this.handles.set(name, h);
    }
    return h;
  }

  private async fh(name: string): Promise<FileHandle> {
    checkName(name);
    try {
      return await this.handle(name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CorruptionError(kindOf(name, 'missing'), name, `${name} is missing from ${this.location}`);
      throw err;
    }
  }

  async readFile(name: string, maxBytes: number): Promise<Uint8Array> {
    const fh = await this.fh(name);
    const size = (await fh.stat()).size;
    if (size > maxBytes) throw new CorruptionError(kindOf(name, 'short'), name, `${name} is ${size} bytes, more than the expected ${maxBytes}`);
    return this.readRange(name, 0, size);
  }

  async readRange(name: string, offset: number, length: number): Promise<Uint8Array> {
    const buf = Buffer.allocUnsafe(length);
    await this.readRangeInto(name, offset, buf);
    return buf;
  }

  async readRangeInto(name: string, offset: number, buf: Uint8Array): Promise<void> {
    const fh = await this.fh(name);
    const length = buf.length;
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got < length) throw new CorruptionError(kindOf(name, 'short'), name, `${name} ends at ${offset + got}, expected at least ${offset + length} bytes (truncated)`);
  }

  async close(): Promise<void> {
    const hs = [...this.handles.values()];
    this.handles.clear();
    await Promise.allSettled(hs.map(async (h) => (await h).close()));
  }
}

export interface HttpImageSourceOptions {
  /** Attempts per request on network errors, 5xx and cut-off bodies (default 5). */
  attempts?: number;
  /** First retry delay; doubles per attempt (at most 10 s) with ±50 % jitter (default 200 ms). */
  retryDelayMs?: number;
  /** Per-request timeout (default 60 s). */
  timeoutMs?: number;
  /**
   * Query parameters added to every request, asked for again before each attempt (e.g. a download token
   * `token=…` that the caller renews before it expires).
   */
  query?: () => Record<string, string>;
}

class RetryableError extends Error {}

/** An image under an http(s) base URL (a CDN or the depot). Uses HTTP range requests. */
export class HttpImageSource implements ImageSource {
  readonly location: string;
  private readonly base: URL;
  private readonly attempts: number;
  private readonly retryDelayMs: number;
  private readonly timeoutMs: number;
  private readonly query?: () => Record<string, string>;

  constructor(baseUrl: string | URL, opts: HttpImageSourceOptions = {}) {
    const b = new URL(String(baseUrl));
    if (b.protocol !== 'http:' && b.protocol !== 'https:') throw new RangeError(`not an http(s) URL: ${b.href}`);
    if (!b.pathname.endsWith('/')) b.pathname += '/';
    this.base = b;
    this.location = b.href;
    this.attempts = Math.max(1, opts.attempts ?? 5);
    this.retryDelayMs = opts.retryDelayMs ?? 200;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.query = opts.query;
  }

  private async withRetries<T>(name: string, once: () => Promise<T>): Promise<T> {
    let last: unknown;
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      if (attempt > 0) {
        const delay = backoffDelayMs({ baseMs: this.retryDelayMs, factor: 2, maxMs: 10_000, jitter: 0.5 }, attempt);
        await new Promise((r) => setTimeout(r, delay));
      }
      try {
        return await once();
      } catch (err) {
        if (!(err instanceof RetryableError) && !(err instanceof HttpGetError && err.retryable)) throw err;
        last = err;
      }
    }
    throw new EngineError('source-unavailable', `cannot read ${name} from ${this.location}: ${(last as Error)?.message ?? 'unknown error'}`);
  }

  private url(name: string): URL {
    checkName(name);
    const u = new URL(name, this.base);
    if (this.query) for (const [k, v] of Object.entries(this.query())) u.searchParams.set(k, v);
    return u;
  }

  async readFile(name: string, maxBytes: number): Promise<Uint8Array> {
    return this.withRetries(name, async () => {
      const res = await httpGet(this.url(name), {}, this.timeoutMs);
      this.checkStatus(res, name);
      const len = Number(res.header('content-length') ?? NaN);
      const tooLarge = () => new CorruptionError(kindOf(name, 'short'), name, `${name} is larger than the expected ${maxBytes} bytes`);
      if (len > maxBytes) {
        res.discard();
        throw new CorruptionError(kindOf(name, 'short'), name, `${name} is ${len} bytes, more than the expected ${maxBytes}`);
      }
      const body = await res.body(maxBytes, tooLarge);
      if (Number.isFinite(len) && body.length !== len) throw new RetryableError(`${name}: body cut off`);
      return body;
    });
  }

  async readRange(name: string, offset: number, length: number): Promise<Uint8Array> {
    return this.withRetries(name, async () => {
      const res = await httpGet(this.url(name), { range: `bytes=${offset}-${offset + length - 1}` }, this.timeoutMs);
      if (res.status === 416) {
        res.discard();
        throw new CorruptionError(kindOf(name, 'short'), name, `${name} is shorter than ${offset + length} bytes (truncated)`);
      }
      this.checkStatus(res, name);
      let total = NaN;
      if (res.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.header('content-range') ?? '');
        if (!m || Number(m[1]) !== offset) {
          res.discard();
          throw new RetryableError(`${name}: unexpected Content-Range`);
        }
        total = m[3] === '*' ? NaN : Number(m[3]);
      }
      // A server that ignores Range sends the whole file: up to the end of the range is kept, the rest dropped.
      const wanted = res.status === 200 ? offset + length : length;
      const body = await this.rangeBody(res, name, wanted);
      if (res.status === 200) {
        if (body.length < offset + length) throw new CorruptionError(kindOf(name, 'short'), name, `${name} is ${body.length} bytes, expected at least ${offset + length} (truncated)`);
        return body.subarray(offset, offset + length);
      }
      if (body.length !== length) {
        if (Number.isFinite(total) && total < offset + length) {
          throw new CorruptionError(kindOf(name, 'short'), name, `${name} is ${total} bytes, expected at least ${offset + length} (truncated)`);
        }
        throw new RetryableError(`${name}: got ${body.length} of ${length} bytes`);
      }
      return body;
    });
  }

  /** The body of a range answer: a 206 of more than `wanted` bytes is retried; a 200 is cut at `wanted`. */
  private async rangeBody(res: HttpGetResponse, name: string, wanted: number): Promise<Uint8Array> {
    try {
      return await res.body(wanted, res.status === 206 ? () => new RetryableError(`${name}: more bytes than asked for`) : undefined);
    } catch (err) {
      if (err instanceof HttpGetError) throw new RetryableError(`${name}: ${err.message}`);
      throw err;
    }
  }

  private checkStatus(res: HttpGetResponse, name: string): void {
    if (res.status === 404 || res.status === 410) {
      res.discard();
      throw new CorruptionError(kindOf(name, 'missing'), name, `${name} is missing from ${this.location} (HTTP ${res.status})`);
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      res.discard();
      throw new RetryableError(`${name}: HTTP ${res.status}`);
    }
    if (res.status === 401 || res.status === 403) {
      res.discard();
      throw new EngineError('source-forbidden', `cannot read ${name} from ${this.location}: HTTP ${res.status} (a download token is missing, wrong or expired)`);
    }
    if (res.status !== 200 && res.status !== 206) {
      res.discard();
      throw new EngineError('source-unavailable', `cannot read ${name} from ${this.location}: HTTP ${res.status}`);
    }
  }

  async close(): Promise<void> {}
}

/** A folder path or an http(s) URL. */
export function openImageSource(location: string | URL, httpOptions?: HttpImageSourceOptions): ImageSource {
  const s = String(location);
  if (/^https?:\/\//i.test(s)) return new HttpImageSource(s, httpOptions);
  return new FolderImageSource(s);
}
