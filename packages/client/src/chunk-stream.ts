// Downloads the chunks of one image into the install folder, in stream order, with priority reads
// (`ensure`) jumping the queue. Every chunk is decoded and checked against its SHA-256 before it is written,
// on the engine's codec worker threads (the main thread stays free for FUSE reads, events and the network)
// (a damaged or truncated payload from the origin is fetched again, never written as good), then written to
// every place that uses it, then marked present. The presence bitmap is saved every few seconds, so a killed
// download resumes where it stopped (losing at most the chunks since the last save, never marking a chunk
// present that is not written).
import { closeSync, constants as fsConstants, fchmodSync, openSync, writeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { CodecPool, coalesce, CorruptionError, decodeOnPool, FILE_READ_AHEAD_BYTES, URGENT_GROUP_BYTES, type ImageSource, type Manifest } from '@rockit/engine';
import { ClientError, asClientError, diskFullError, isDiskFull } from './errors.js';
import type { RateLimiter, Slot } from './rate-limiter.js';
import { mapHttpError } from './remote.js';

/** Bytes per range read: small enough for fine pacing and quick priority reads. */
const GROUP_BYTES = 1024 * 1024;
/** With --limit-rate, a read is about this long on the link (1 MiB at 100 Mbit/s; smaller on slower links). */
const GROUP_MS = 80;
const MIN_GROUP_BYTES = 64 * 1024;
const SAVE_EVERY_MS = 2000;
const SAVE_EVERY_BYTES = 32 * 1024 * 1024;
const MAX_OPEN_FILES = 64;
/** Attempts per read when the origin serves damaged bytes. */
const CORRUPT_ATTEMPTS = 3;

export interface ChunkStreamOptions {
  dir: string;
  manifest: Manifest;
  source: ImageSource;
  /** Presence bits (chunk i = bit i % 8 of byte i / 8); updated in place. */
  present: Uint8Array;
  /** Saves the presence bits (called every few seconds and at the end). */
  save: (bits: Uint8Array) => Promise<void>;
  /** Before each read (e.g. renew a download token). */
  beforeRead?: () => Promise<void>;
  parallelReads?: number;
  limiter?: RateLimiter;
  /** Decode + verify on these worker threads (default: a pool of its own for each run(), closed at its end). */
  pool?: CodecPool;
  /** Priority reads decode here (default: a one-thread pool of its own for each run()). */
  urgentPool?: CodecPool;
  /** Where a verified chunk goes (default: every place the build's files use it, see writeChunk). */
  sink?: (ci: number, raw: Buffer) => void;
  /**
   * After a priority read, also fetch this many stored bytes of the same file after the range asked for, right
   * after the needed chunks (default FILE_READ_AHEAD_BYTES, as `rockit faststart simulate` models; 0 = none).
   */
  fileReadAheadBytes?: number;
}

/** Worker threads of a stream's own codec pool: one core is left to the main thread (FUSE, network). */
export function decodeThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

/** One range read of adjacent chunks, from claim to release. */
interface Read {
  g: number[];
  /** Waiting for its slot on the link (may still give its chunks up). */
  waiting: boolean;
  /** Gave its chunks up to a priority read. */
  yielded: boolean;
  released?: boolean;
  ctl: AbortController;
}

export const hasBit = (bits: Uint8Array, i: number) => (bits[i >> 3] & (1 << (i & 7))) !== 0;
const setBit = (bits: Uint8Array, i: number) => {
  bits[i >> 3] |= 1 << (i & 7);
};
export const clearBit = (bits: Uint8Array, i: number) => {
  bits[i >> 3] &= ~(1 << (i & 7));
};

export class ChunkStream {
  readonly manifest: Manifest;
  /** Stored bytes of chunks before index i (stream offset); length n + 1. */
  readonly streamOffset: Float64Array;
  private readonly o: ChunkStreamOptions;
  private readonly inflight: Uint8Array;
  private readonly urgent: number[] = [];
  /** Read-ahead after a priority read: fetched by the priority reader once `urgent` is empty. */
  private readonly soon: number[] = [];
  private readonly waiters = new Map<number, Array<() => void>>();
  private cursor = 0;
  /** Every chunk before this index is present. */
  private prefix = 0;
  private readonly locStart: Int32Array;
  private readonly locFile: Int32Array;
  private readonly locOffset: Float64Array;
  private readonly handles = new Map<number, number>();
  private readonly byPath = new Map<string, number>();
  private readonly fileOffsets = new Map<number, Float64Array>();
  private readonly abort = new AbortController();
  private failure?: unknown;
  private lastSave = Date.now();
  private bytesSinceSave = 0;
  private saving?: Promise<void>;
  private wake?: () => void;
  /** Stored bytes fetched by this run. */
  fetchedBytes = 0;
  presentStoredBytes = 0;
  /** Called after each read has been written (progress, readiness). */
  onChunk?: (storedBytes: number) => void;

  constructor(o: ChunkStreamOptions) {
    this.o = o;
    const m = (this.manifest = o.manifest);
    const n = m.chunks.length;
    this.inflight = new Uint8Array(n);
    this.streamOffset = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) {
      this.streamOffset[i + 1] = this.streamOffset[i] + m.chunks[i].storedSizeBytes;
      if (hasBit(o.present, i)) this.presentStoredBytes += m.chunks[i].storedSizeBytes;
    }
    const counts = new Int32Array(n + 1);
    for (const f of m.files) if (f.type === 'file') for (const ci of f.chunks) counts[ci + 1]++;
    for (let i = 0; i < n; i++) counts[i + 1] += counts[i];
    this.locStart = counts;
    const fill = counts.slice(0, n);
    this.locFile = new Int32Array(counts[n]);
    this.locOffset = new Float64Array(counts[n]);
    m.files.forEach((f, fi) => {
      this.byPath.set(f.path, fi);
      if (f.type !== 'file') return;
      let off = 0;
      for (const ci of f.chunks) {
        const slot = fill[ci]++;
        this.locFile[slot] = fi;
        this.locOffset[slot] = off;
        off += m.chunks[ci].rawSizeBytes;
      }
    });
    this.advancePrefix();
  }

  get complete(): boolean {
    return this.prefix >= this.manifest.chunks.length;
  }

  /** Stream bytes present from the start of the stream without a gap. */
  get prefixBytes(): number {
    return this.streamOffset[this.prefix];
  }

  get totalStoredBytes(): number {
    return this.streamOffset[this.manifest.chunks.length];
  }

  private advancePrefix(): void {
    const n = this.manifest.chunks.length;
    while (this.prefix < n && hasBit(this.o.present, this.prefix)) this.prefix++;
  }

  /**
   * Downloads until every chunk is present, `stop()` is called or a read fails for good. Errors: ClientError
   * ('server-unavailable', 'key-required', 'origin-corrupt', 'disk-full'; all resumable), file-system errors.
   */
  async run(): Promise<void> {
    const ownPool = this.o.pool ? undefined : new CodecPool({ threads: decodeThreads() });
    this.pool = this.o.pool ?? ownPool!;
    // Priority reads decode on a worker of their own: never queued behind the stream's 1 MiB decodes.
    const ownUrgentPool = this.o.urgentPool ? undefined : new CodecPool({ threads: 1 });
    this.urgentPool = this.o.urgentPool ?? ownUrgentPool!;
    this.running = true;
    this.kickUrgent();
    const workers = Array.from({ length: Math.max(1, this.o.parallelReads ?? 4) }, () => this.worker());
    try {
      await Promise.all(workers);
      for (let u = this.urgentReader; u; u = this.urgentReader) {
        await u;
        if (this.urgentReader === u) this.urgentReader = undefined;
      }
    } finally {
      this.running = false;
      for (const fd of this.handles.values()) closeSync(fd);
      this.handles.clear();
      await ownPool?.close();
      await ownUrgentPool?.close();
      await this.saving;
      try {
        await this.o.save(this.o.present);
      } catch (err) {
        // The chunks written since the last save are fetched again by the next run; the first error wins.
        this.failure ??= isDiskFull(err) ? this.diskFull() : err;
      }
    }
    if (this.failure !== undefined) throw this.failure;
  }

  /** Stops at the next read; run() resolves once the reads in flight are written. */
  stop(): void {
    if (!this.abort.signal.aborted) this.abort.abort(new ClientError('server-unavailable', 'stopped', true));
    this.wake?.();
  }

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /**
   * Resolves when bytes [offset, offset + length) of the file at `path` are present and verified, fetching their
   * chunks ahead of the stream order. Rejects with the stream's error when it fails, RangeError for a path that
   * is not a regular file of the build.
   */
  ensure(path: string, offset: number, length: number): Promise<void> {
    const chunks = this.chunksOf(path, offset, length);
    const missing = chunks.filter((ci) => !hasBit(this.o.present, ci));
    if (missing.length === 0) return Promise.resolve();
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const waits = missing.map(
      (ci) =>
        new Promise<void>((resolve) => {
          const list = this.waiters.get(ci) ?? [];
          list.push(resolve);
          this.waiters.set(ci, list);
        }),
    );
    for (const ci of missing) {
      this.unclaim(ci);
      if (!this.inflight[ci]) this.urgent.push(ci);
    }
    this.queueReadAhead(path, offset + length);
    this.kickUrgent();
    this.wake?.();
    return Promise.race([Promise.all(waits).then(() => undefined), this.failed()]);
  }

  private failedPromise?: Promise<never>;
  private failReject?: (e: unknown) => void;
  private failed(): Promise<never> {
    this.failedPromise ??= new Promise<never>((_, reject) => (this.failReject = reject));
    this.failedPromise.catch(() => undefined);
    return this.failedPromise;
  }

  /** Whether the chunks of a byte range of a file are all present. */
  has(path: string, offset: number, length: number): boolean {
    return this.chunksOf(path, offset, length).every((ci) => hasBit(this.o.present, ci));
  }

  /** Chunk indexes covering a byte range of a regular file (hard links resolve to their target). */
  chunksOf(path: string, offset: number, length: number): number[] {
    let fi = this.byPath.get(path);
    let f = fi === undefined ? undefined : this.manifest.files[fi];
    if (f?.type === 'hardlink') {
      fi = this.byPath.get(f.linkTarget);
      f = fi === undefined ? undefined : this.manifest.files[fi];
    }
    if (!f || f.type !== 'file' || fi === undefined) throw new RangeError(`not a file of the build: ${path}`);
    if (length <= 0 || offset >= f.sizeBytes) return [];
    let offs = this.fileOffsets.get(fi);
    if (!offs) {
      offs = new Float64Array(f.chunks.length + 1);
      for (let k = 0; k < f.chunks.length; k++) offs[k + 1] = offs[k] + this.manifest.chunks[f.chunks[k]].rawSizeBytes;
      this.fileOffsets.set(fi, offs);
    }
    // First ordinal whose end is past offset.
    let lo = 0;
    let hi = f.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (offs[mid + 1] <= offset) lo = mid + 1;
      else hi = mid;
    }
    const end = Math.min(f.sizeBytes, offset + length);
    const out: number[] = [];
    for (let k = lo; k < f.chunks.length && offs[k] < end; k++) out.push(f.chunks[k]);
    return out;
  }

  /**
   * Queues the missing, unclaimed chunks of the file at `path` from byte `from` on, up to the read-ahead's stored
   * bytes: a game reading a file in pieces then misses once instead of once per piece.
   */
  private queueReadAhead(path: string, from: number): void {
    const cap = this.o.fileReadAheadBytes ?? FILE_READ_AHEAD_BYTES;
    if (cap <= 0) return;
    const chunks = this.chunksOf(path, from, Number.MAX_SAFE_INTEGER);
    let bytes = 0;
    for (const ci of chunks) {
      bytes += this.manifest.chunks[ci].storedSizeBytes;
      if (bytes > cap) break;
      if (!hasBit(this.o.present, ci) && !this.inflight[ci]) this.soon.push(ci);
    }
  }

  /** The next priority read: chunks a read waits for first, then read-ahead; undefined when there is none. */
  private nextUrgent(): { g: number[]; urgent: boolean } | undefined {
    for (const queue of [this.urgent, this.soon]) {
      while (queue.length > 0) {
        const ci = queue.shift()!;
        if (!hasBit(this.o.present, ci) && !this.inflight[ci]) return { g: this.take(ci, URGENT_GROUP_BYTES), urgent: true };
      }
    }
    return undefined;
  }

  /** A read starting at chunk `first`: the following missing, unclaimed chunks adjacent in one pack, up to `cap` bytes. */
  private take(first: number, cap: number): number[] {
    const m = this.manifest;
    const n = m.chunks.length;
    const g = [first];
    let bytes = m.chunks[first].storedSizeBytes;
    for (let i = first + 1; i < n && !hasBit(this.o.present, i) && !this.inflight[i]; i++) {
      if (bytes + m.chunks[i].storedSizeBytes > cap) break;
      g.push(i);
      bytes += m.chunks[i].storedSizeBytes;
    }
    return coalesce(m, g, cap)[0];
  }

  private nextGroup(): { g: number[]; urgent: boolean } | undefined {
    const m = this.manifest;
    const n = m.chunks.length;
    const u = this.nextUrgent();
    if (u) return u;
    while (this.cursor < n && (hasBit(this.o.present, this.cursor) || this.inflight[this.cursor])) this.cursor++;
    if (this.cursor < n) return { g: this.take(this.cursor, this.groupBytes), urgent: false };
    return undefined;
  }

  private async worker(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      const next = this.nextGroup();
      if (!next) {
        // Everything is present or being fetched by another worker: wait for priority work or the end.
        if (this.inflightCount === 0) return;
        await new Promise<void>((r) => {
          this.wake = r;
          setTimeout(r, 50);
        });
        continue;
      }
      await this.process(next);
    }
  }

  /**
   * Priority reads get a reader of their own, so they never wait for a stream reader to come free (those may be
   * pacing for --limit-rate). At most one at a time; run() waits for it before it returns.
   */
  private kickUrgent(): void {
    if (!this.running || this.urgentReader || this.abort.signal.aborted) return;
    const wanted = (ci: number) => !hasBit(this.o.present, ci) && !this.inflight[ci];
    if (!this.urgent.some(wanted) && !this.soon.some(wanted)) return;
    const self = { reader: undefined as Promise<void> | undefined };
    self.reader = (async () => {
      await Promise.resolve(); // so that `self.reader` is assigned before the finally below can run
      try {
        for (let next = this.nextUrgent(); next && !this.abort.signal.aborted; next = this.nextUrgent()) await this.process(next);
      } finally {
        if (this.urgentReader === self.reader) this.urgentReader = undefined;
      }
    })();
    this.urgentReader = self.reader;
  }

  private async process(next: { g: number[]; urgent: boolean }): Promise<void> {
    const signal = this.abort.signal;
    const read: Read = { g: next.g, waiting: false, yielded: false, ctl: new AbortController() };
    for (const ci of read.g) {
      this.inflight[ci] = 1;
      this.readOf.set(ci, read);
    }
    this.inflightCount += read.g.length;
    try {
      await this.fetchGroup(read, signal, next.urgent);
    } catch (err) {
      if (!signal.aborted && !read.yielded) {
        this.failure = isDiskFull(err) ? this.diskFull() : asClientError(mapHttpError(err));
        this.failReject?.(this.failure);
        this.abort.abort(this.failure);
      }
    } finally {
      this.release(read);
    }
  }

  /** The read's chunks are no longer claimed (done, failed, or yielded to a priority read). */
  private release(read: Read): void {
    if (read.released) return;
    read.released = true;
    for (const ci of read.g) {
      this.inflight[ci] = 0;
      if (this.readOf.get(ci) === read) this.readOf.delete(ci);
    }
    this.inflightCount -= read.g.length;
    // A yielded (or failed) read's chunks are behind the stream's cursor: let the stream come back for them.
    if (read.g.some((ci) => !hasBit(this.o.present, ci))) this.cursor = Math.min(this.cursor, read.g[0]);
    this.wake?.();
  }

  /**
   * A stream read that claimed chunk `ci` but still waits for its turn on the link (--limit-rate) gives its
   * chunks up, so that a priority read fetches the missing one at once instead of waiting behind the stream.
   */
  private unclaim(ci: number): void {
    const read = this.readOf.get(ci);
    if (!read || !read.waiting || read.yielded) return;
    read.yielded = true;
    this.release(read);
    read.ctl.abort();
  }

  /** Bytes of a stream read: GROUP_BYTES, or GROUP_MS of the limited rate. */
  private get groupBytes(): number {
    const rate = this.o.limiter?.bytesPerSecond;
    return rate ? Math.max(MIN_GROUP_BYTES, Math.min(GROUP_BYTES, Math.round((rate * GROUP_MS) / 1000))) : GROUP_BYTES;
  }

  private inflightCount = 0;
  private readonly readOf = new Map<number, Read>();
  private running = false;
  private pool?: CodecPool;
  private urgentPool?: CodecPool;
  private urgentReader?: Promise<void>;


  private async fetchGroup(read: Read, signal: AbortSignal, urgent: boolean): Promise<void> {
    const g = read.g;
    const m = this.manifest;
    const first = m.chunks[g[0]];
    const last = m.chunks[g[g.length - 1]];
    const length = last.offset + last.storedSizeBytes - first.offset;
    const pack = `packs/${m.packs[first.pack].name}`;
    const limiter = this.o.limiter;
    let raws: Buffer[] | undefined;
    for (let attempt = 1; !raws; attempt++) {
      // A stream read waits for its slot on the (rate-limited) link; until then a priority read may take its chunks.
      // A priority read (the game waits for it) takes the link at once and the stream pauses meanwhile.
      let slot: Slot | undefined;
      let urgentArrived: Promise<void> | undefined;
      if (urgent) urgentArrived = limiter?.urgent(length, signal);
      else {
        read.waiting = true;
        slot = await limiter?.begin(length, AbortSignal.any([signal, read.ctl.signal]));
        read.waiting = false;
      }
      await this.o.beforeRead?.();
      signal.throwIfAborted();
      const [bytes] = await Promise.all([this.o.source.readRange(pack, first.offset, length), urgentArrived]);
      this.fetchedBytes += length;
      try {
        // Decoded and checked against each chunk's SHA-256 on a worker thread; raw chunks come back to back.
        const out = await decodeOnPool(urgent ? this.urgentPool! : this.pool!, m, g, bytes);
        let at = 0;
        raws = g.map((ci) => {
          const len = m.chunks[ci].rawSizeBytes;
          const raw = Buffer.from(out.buffer, out.byteOffset + at, len);
          at += len;
          return raw;
        });
      } catch (err) {
        if (!(err instanceof CorruptionError) || attempt >= CORRUPT_ATTEMPTS) {
          throw new ClientError('origin-corrupt', `the origin keeps serving damaged data: ${(err as Error).message} (run again later to resume)`, true);
        }
      } finally {
        // The read's bytes count as arrived at the end of its slot (moved back by priority reads meanwhile).
        await limiter?.end(slot, signal);
      }
    }
    for (let k = 0; k < g.length; k++) {
      const ci = g[k];
      this.writeChunk(ci, raws[k]);
      setBit(this.o.present, ci);
      this.presentStoredBytes += m.chunks[ci].storedSizeBytes;
      const w = this.waiters.get(ci);
      if (w) {
        this.waiters.delete(ci);
        for (const r of w) r();
      }
      this.bytesSinceSave += m.chunks[ci].storedSizeBytes;
    }
    this.advancePrefix();
    this.onChunk?.(length);
    if (!this.saving && (Date.now() - this.lastSave > SAVE_EVERY_MS || this.bytesSinceSave > SAVE_EVERY_BYTES)) {
      this.lastSave = Date.now();
      this.bytesSinceSave = 0;
      // A snapshot: bits set later are saved next time.
      const snap = this.o.present.slice();
      // A failed save (e.g. a full disk) is retried by the next one; the last save's error is reported by run().
      this.saving = this.o.save(snap)
        .catch(() => undefined)
        .finally(() => (this.saving = undefined));
    }
  }

  /** A full disk: names the folder and the raw bytes still to write. */
  diskFull(): ClientError {
    let left = 0;
    this.manifest.chunks.forEach((c, ci) => {
      if (!hasBit(this.o.present, ci)) left += c.rawSizeBytes;
    });
    return diskFullError(this.o.dir, left);
  }

  /** Whether chunk `ci` is present. */
  isPresent(ci: number): boolean {
    return hasBit(this.o.present, ci);
  }

  /** Writes a chunk obtained elsewhere (e.g. copied from the installed build, verified by the caller) and marks it present. */
  put(ci: number, raw: Buffer): void {
    this.writeChunk(ci, raw);
    if (!hasBit(this.o.present, ci)) {
      setBit(this.o.present, ci);
      this.presentStoredBytes += this.manifest.chunks[ci].storedSizeBytes;
    }
    this.advancePrefix();
  }

  /** Closes the files put() opened (run() closes its own). */
  closeFiles(): void {
    for (const fd of this.handles.values()) closeSync(fd);
    this.handles.clear();
  }

  /** Synchronous positional writes: chunk-sized page-cache writes are cheaper inline (as in extract). */
  private writeChunk(ci: number, raw: Buffer): void {
    if (this.o.sink) return this.o.sink(ci, raw);
    for (let s = this.locStart[ci]; s < this.locStart[ci + 1]; s++) {
      const fd = this.handle(this.locFile[s]);
      const at = this.locOffset[s];
      let w = 0;
      while (w < raw.length) w += writeSync(fd, raw, w, raw.length - w, at + w);
    }
  }

  private handle(fi: number): number {
    let fd = this.handles.get(fi);
    if (fd !== undefined) {
      this.handles.delete(fi);
      this.handles.set(fi, fd);
      return fd;
    }
    if (this.handles.size >= MAX_OPEN_FILES) {
      const [oldest, ofd] = this.handles.entries().next().value as [number, number];
      this.handles.delete(oldest);
      closeSync(ofd);
    }
    const f = this.manifest.files[fi];
    try {
      fd = openSync(join(this.o.dir, f.path), 'r+');
    } catch {
      // Created here when the layout has not reached it yet (a fresh install lays files out while reads run);
      // never truncated: the layout may have created it in between.
      fd = openSync(join(this.o.dir, f.path), fsConstants.O_RDWR | fsConstants.O_CREAT, f.mode & 0o777);
      fchmodSync(fd, f.mode & 0o777);
    }
    this.handles.set(fi, fd);
    return fd;
  }
}
