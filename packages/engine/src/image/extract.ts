// Image → game folder, byte-identical (contents, folders, exec bit, symlinks, hard links), verified and
// resumable. Chunks are fetched in stream order and written to every place that uses them inside a staging
// folder beside the target; a small state file records how far the stream got. The staging folder is renamed
// onto the target only when every file has been written and its SHA-256 checked.
import { createHash, type Hash } from 'node:crypto';
import { chmodSync, closeSync, createReadStream, fchmodSync, openSync, writeSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { CorruptionError, EngineError, FormatError } from '../errors.js';
import { EXTRACT_STAGING_SUFFIX, EXTRACT_STATE_EVERY_BYTES, EXTRACT_STATE_SUFFIX, MAX_SYMLINK_HOPS } from '../format/constants.js';
import { isNormalEntryPath, parentOf, symlinkEscapesRoot } from '../format/paths.js';
import type { FileEntry, Manifest } from '../format/types.js';
import { openImageSource, type HttpImageSourceOptions, type ImageSource } from './image-source.js';
import { openImage, readChunks, type OpenedImage, type ReadChunksOptions } from './reader.js';
import { CodecPool } from '../codec/codec-pool.js';

export interface ExtractProgress {
  /** Raw bytes written so far (this run). */
  doneBytes: number;
  /** Raw bytes to write in this run. */
  totalBytes: number;
}

export interface ExtractImageOptions {
  /** Image folder, http(s) base URL, or an ImageSource. */
  source: string | URL | ImageSource;
  /** Target folder; must not exist or be empty. */
  outDir: string;
  http?: HttpImageSourceOptions;
  reads?: Omit<ReadChunksOptions, 'pool'>;
  /** Decode/verify worker threads (default: all cores; 0 = calling thread only). */
  threads?: number;
  /** Save resume state after this many written bytes (default EXTRACT_STATE_EVERY_BYTES). */
  stateEveryBytes?: number;
  onProgress?: (p: ExtractProgress) => void;
  /** Cancels the extraction at the next chunk (throws signal.reason); the staging folder is kept for a resume. */
  signal?: AbortSignal;
}

export interface ExtractResult {
  files: number;
  rawBytes: number;
  /** Chunks fetched in this run (fewer than the image's when resuming). */
  chunksFetched: number;
  resumed: boolean;
  seconds: number;
}

interface ExtractState {
  manifestSha256: string;
  /** Every chunk with a smaller index has been written to all its places. */
  chunksDone: number;
}

const MAX_OPEN_FILES = 64;

/** Refuses manifests whose entries could land outside the target (defence in depth; the decoder checks paths too). */
function checkPaths(m: Manifest): void {
  const symlinks = new Map<string, string>();
  for (const f of m.files) {
    if (!isNormalEntryPath(f.path)) throw new FormatError(`manifest entry escapes the target: ${JSON.stringify(f.path)}`, 'format-unsafe-path');
    if (f.type === 'symlink') symlinks.set(f.path, f.linkTarget);
  }
  for (const p of symlinks.keys()) {
    if (symlinkEscapesRoot(p, (q) => symlinks.get(q), MAX_SYMLINK_HOPS)) {
      throw new FormatError(`manifest symlink points outside the target: ${JSON.stringify(p)}`, 'format-unsafe-path');
    }
  }
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** SHA-256 of a whole file read in 1 MiB steps, or undefined when it cannot be read (missing, a folder, …). */
export async function hashFile(path: string): Promise<Buffer | undefined> {
  try {
    const h = createHash('sha256');
    for await (const b of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(b as Buffer);
    return h.digest();
  } catch {
    return undefined;
  }
}

/**
 * Writes the image's game folder into `outDir`. Resumes a previous interrupted extraction of the same image
 * into the same folder (files already complete with the right hash are kept).
 * Errors: CorruptionError (a chunk, pack, manifest or written file does not verify — the staging folder is kept
 * so that a retry resumes), FormatError (unsupported or unsafe manifest), EngineError 'output-exists',
 * EngineError 'source-unavailable' (network).
 */
export async function extractImage(opts: ExtractImageOptions): Promise<ExtractResult> {
  const started = process.hrtime.bigint();
  const source = typeof opts.source === 'string' || opts.source instanceof URL ? openImageSource(opts.source, opts.http) : opts.source;
  try {
    const img = await openImage(source);
    const m = img.manifest;
    checkPaths(m);
    const target = resolve(opts.outDir);
    if (!(await isEmptyOrMissing(target))) throw new EngineError('output-exists', `output folder is not empty: ${target}`);
    const staging = target + EXTRACT_STAGING_SUFFIX;
    const statePath = target + EXTRACT_STATE_SUFFIX;
    const sha = img.imageJson.manifest.sha256;

    const state = await readState(statePath, sha, m.chunks.length);
    if (!state) await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    const run = new Extraction(img, opts, staging, statePath, state);
    await makeFolders(m, staging);
    await run.writeChunks();
    await writeEntries(m, staging, run.moded);
    await rm(statePath, { force: true });
    await mkdir(dirname(target), { recursive: true });
    await rmdir(target).catch(() => undefined);
    await rename(staging, target);
    let rawBytes = 0;
    let files = 0;
    for (const f of m.files) {
      if (f.type === 'file') {
        files++;
        rawBytes += f.sizeBytes;
      }
    }
    return { files, rawBytes, chunksFetched: run.fetched, resumed: run.resumed, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    await source.close();
  }
}

/** The resume state of an earlier run of this image into this target, or undefined when there is none (or it is unusable). */
async function readState(statePath: string, manifestSha256: string, chunkCount: number): Promise<ExtractState | undefined> {
  try {
    const s = JSON.parse(await readFile(statePath, 'utf8')) as ExtractState;
    if (s.manifestSha256 === manifestSha256 && Number.isSafeInteger(s.chunksDone) && s.chunksDone >= 0 && s.chunksDone <= chunkCount) return s;
  } catch {
    return undefined;
  }
  return undefined;
}

/** Folders first (and the parents of everything). */
async function makeFolders(m: Manifest, staging: string): Promise<void> {
  const dirs = new Set<string>();
  for (const f of m.files) {
    if (f.type === 'dir') dirs.add(f.path);
    const p = parentOf(f.path);
    if (p !== '') dirs.add(p);
  }
  for (const d of [...dirs].sort()) await mkdir(join(staging, d), { recursive: true });
}

/** Everything without chunks, then links, then modes (files in `moded` already have theirs). */
async function writeEntries(m: Manifest, staging: string, moded: Uint8Array): Promise<void> {
  const byPath = new Map<string, FileEntry>(m.files.map((f) => [f.path, f]));
  for (const f of m.files) {
    const p = join(staging, f.path);
    if (f.type === 'file' && f.chunks.length === 0) {
      await writeFile(p, new Uint8Array(0));
      if (!createHash('sha256').digest().equals(f.sha256)) throw new CorruptionError('file', f.path, `file ${JSON.stringify(f.path)} does not match its SHA-256`);
    } else if (f.type === 'symlink') {
      await rm(p, { force: true });
      await symlink(f.linkTarget, p);
    } else if (f.type === 'hardlink') {
      const original = byPath.get(f.linkTarget);
      if (!original || original.type !== 'file') throw new FormatError(`hard link to a missing file: ${JSON.stringify(f.path)}`, 'format-invalid');
      await rm(p, { force: true });
      await link(join(staging, original.path), p);
    }
  }
  // Synchronous metadata calls: a thread-pool round trip each would cost more than the syscall (as for writes).
  m.files.forEach((f, fi) => {
    if (f.type === 'file' && !moded[fi]) chmodSync(join(staging, f.path), f.mode & 0o777);
    else if (f.type === 'dir') chmodSync(join(staging, f.path), (f.mode & 0o777) | 0o700);
  });
}

/**
 * One run of the chunk stream into the staging folder: which chunks to fetch, where each goes, the open files,
 * the running hash of every file, and the resume state saved on the way.
 */
class Extraction {
  readonly resumed: boolean;
  /** Chunks fetched in this run. */
  fetched = 0;
  /** Files whose final mode is already set. */
  readonly moded: Uint8Array;
  private readonly m: Manifest;
  /** Every chunk below k0 was written by the interrupted run (0 when not resuming). */
  private readonly k0: number;
  // Where each chunk goes: CSR lists of (file, offset); chunk ci's places are counts[ci] .. counts[ci + 1] - 1.
  private readonly counts: Int32Array;
  private readonly locFile: Int32Array;
  private readonly locOffset: Float64Array;
  /** Highest chunk index of each file. */
  private readonly maxChunk: Int32Array;
  // Per-file progress. `reread`: the running hash is unusable, hash the file from disk when it completes.
  /** Chunk places still to write per file (0: complete and verified, or nothing to do). */
  private readonly remaining: Int32Array;
  private readonly hashes: Array<Hash | undefined>;
  private readonly nextOffset: Float64Array;
  private readonly reread: Uint8Array;
  /** Chunks below k0 to fetch again: their file was lost or altered since the interrupted run. */
  private readonly refetch = new Set<number>();
  private readonly handles = new Map<number, number>();
  private readonly opened: Uint8Array;
  private pool!: CodecPool;
  // One pending positional write: consecutive chunks of one file that also lie back to back in one decode
  // buffer (the usual case in stream order) become a single write and a single hash update.
  private pFile = -1;
  private pBuf: Buffer | undefined;
  private pStart = 0;
  private pEnd = 0;
  private pAt = 0;

  constructor(
    private readonly img: OpenedImage,
    private readonly opts: ExtractImageOptions,
    private readonly staging: string,
    private readonly statePath: string,
    state: ExtractState | undefined,
  ) {
    const m = img.manifest;
    this.m = m;
    this.resumed = state !== undefined;
    this.k0 = state?.chunksDone ?? 0;
    const n = m.chunks.length;
    const counts = new Int32Array(n + 1);
    for (const f of m.files) for (const ci of f.chunks) counts[ci + 1]++;
    for (let i = 0; i < n; i++) counts[i + 1] += counts[i];
    const fill = counts.slice(0, n);
    const locFile = new Int32Array(counts[n]);
    const locOffset = new Float64Array(counts[n]);
    const maxChunk = new Int32Array(m.files.length).fill(-1);
    m.files.forEach((f, fi) => {
      let off = 0;
      for (const ci of f.chunks) {
        const slot = fill[ci]++;
        locFile[slot] = fi;
        locOffset[slot] = off;
        off += m.chunks[ci].rawSizeBytes;
        if (ci > maxChunk[fi]) maxChunk[fi] = ci;
      }
    });
    this.counts = counts;
    this.locFile = locFile;
    this.locOffset = locOffset;
    this.maxChunk = maxChunk;
    this.remaining = new Int32Array(m.files.length);
    this.hashes = new Array(m.files.length);
    this.nextOffset = new Float64Array(m.files.length);
    this.reread = new Uint8Array(m.files.length);
    this.opened = new Uint8Array(m.files.length);
    this.moded = new Uint8Array(m.files.length);
  }

  /** Fetches the chunks this run needs, in stream order, and writes them to every place that uses them. */
  async writeChunks(): Promise<void> {
    await this.planFiles();
    const { m, counts, locFile, locOffset, remaining, opts } = this;
    const order = [...[...this.refetch].sort((a, b) => a - b), ...Array.from({ length: m.chunks.length - this.k0 }, (_, i) => this.k0 + i)];
    let totalBytes = 0;
    for (const ci of order) totalBytes += m.chunks[ci].rawSizeBytes * (counts[ci + 1] - counts[ci]);
    let done = 0;
    let sinceState = 0;
    if (!this.resumed) await this.saveState(0);
    const refetchCount = this.refetch.size;
    this.pool = new CodecPool({ threads: opts.threads });
    try {
      for await (const { index: ci, raw, endOfRead } of readChunks(this.img, order, { ...opts.reads, pool: this.pool, reuseBuffers: true })) {
        opts.signal?.throwIfAborted();
        this.fetched++;
        // `raw` is a view into its read's buffer: `whole` is that buffer, `rawStart` where the chunk begins in it.
        const whole = Buffer.from(raw.buffer, 0, raw.buffer.byteLength);
        const rawStart = raw.byteOffset;
        for (let s = counts[ci]; s < counts[ci + 1]; s++) {
          const fi = locFile[s];
          if (remaining[fi] === 0) continue; // already complete and verified
          const off = locOffset[s];
          if (this.pBuf !== undefined && this.pFile === fi && this.pBuf.buffer === raw.buffer && this.pEnd === rawStart && this.pAt + (this.pEnd - this.pStart) === off) {
            this.pEnd += raw.length;
          } else {
            this.flushPending();
            this.pFile = fi;
            this.pBuf = whole;
            this.pStart = rawStart;
            this.pEnd = rawStart + raw.length;
            this.pAt = off;
          }
          done += raw.length;
          sinceState += raw.length;
          if (--remaining[fi] === 0) {
            this.flushPending();
            await this.completeFile(fi);
          }
        }
        if (endOfRead) this.flushPending(); // the read's buffer is recycled once we ask for the next chunk
        if (this.fetched > refetchCount && sinceState >= (opts.stateEveryBytes ?? EXTRACT_STATE_EVERY_BYTES)) {
          // The state promises that every chunk before ci + 1 is on disk.
          this.flushPending();
          sinceState = 0;
          await this.saveState(ci + 1);
        }
        opts.onProgress?.({ doneBytes: done, totalBytes });
      }
      this.flushPending();
    } finally {
      for (const fd of this.handles.values()) closeSync(fd);
      this.handles.clear();
      await this.pool.close();
    }
  }

  /**
   * What each file still needs. When resuming, a file the interrupted run finished is kept if its hash is right
   * (else all its chunks are fetched again); a file it was writing gets the chunks from k0 on.
   */
  private async planFiles(): Promise<void> {
    const { m, remaining, k0 } = this;
    for (let fi = 0; fi < m.files.length; fi++) {
      const f = m.files[fi];
      if (f.type !== 'file' || f.chunks.length === 0) continue;
      if (!this.resumed) {
        remaining[fi] = f.chunks.length;
        continue;
      }
      if (this.maxChunk[fi] < k0) {
        const h = await hashFile(join(this.staging, f.path));
        if (h && h.equals(f.sha256)) continue; // complete and right: kept
        for (const ci of f.chunks) this.refetch.add(ci);
        remaining[fi] = f.chunks.length;
      } else {
        for (const ci of f.chunks) if (ci >= k0) remaining[fi]++;
      }
      this.reread[fi] = 1;
    }
  }

  private async saveState(chunksDone: number): Promise<void> {
    const tmp = this.statePath + '.tmp';
    await writeFile(tmp, JSON.stringify({ manifestSha256: this.img.imageJson.manifest.sha256, chunksDone } satisfies ExtractState));
    await rename(tmp, this.statePath);
  }

  // Writes use synchronous positional I/O on purpose: chunk-sized page-cache writes are cheaper inline than a
  // thread-pool round trip each (this is what `tar -x` does), and range reads keep running ahead meanwhile.
  private flushPending(): void {
    if (this.pBuf === undefined) return;
    const { pBuf, pStart, pEnd, pAt } = this;
    const fi = this.pFile;
    const fd = this.getHandle(fi);
    const len = pEnd - pStart;
    let w = 0;
    while (w < len) w += writeSync(fd, pBuf, pStart + w, len - w, pAt + w);
    if (!this.reread[fi]) {
      if (this.nextOffset[fi] === pAt) {
        (this.hashes[fi] ??= createHash('sha256')).update(pBuf.subarray(pStart, pEnd));
        this.nextOffset[fi] = pAt + len;
      } else this.reread[fi] = 1;
    }
    this.pBuf = undefined;
    this.pFile = -1;
  }

  private getHandle(fi: number): number {
    const { handles } = this;
    let fd = handles.get(fi);
    if (fd !== undefined) {
      handles.delete(fi);
      handles.set(fi, fd); // most recently used last
      return fd;
    }
    if (handles.size >= MAX_OPEN_FILES) {
      const [oldest, ofd] = handles.entries().next().value as [number, number];
      handles.delete(oldest);
      closeSync(ofd);
    }
    const p = join(this.staging, this.m.files[fi].path);
    if (!this.resumed && !this.opened[fi]) {
      fd = openSync(p, 'w'); // fresh staging folder: the file does not exist yet
    } else {
      try {
        fd = openSync(p, 'r+');
      } catch {
        fd = openSync(p, 'w');
      }
    }
    this.opened[fi] = 1;
    handles.set(fi, fd);
    return fd;
  }

  private async completeFile(fi: number): Promise<void> {
    const f = this.m.files[fi];
    const fd = this.handles.get(fi);
    if (fd !== undefined) {
      this.handles.delete(fi);
      // Final mode now, on the open descriptor: one cheap syscall instead of a path lookup at the end.
      fchmodSync(fd, f.mode & 0o777);
      this.moded[fi] = 1;
      closeSync(fd);
    }
    const p = join(this.staging, f.path);
    const hash = this.hashes[fi];
    let digest = this.reread[fi] || !hash || this.nextOffset[fi] !== f.sizeBytes ? await hashFile(p) : hash.digest();
    this.hashes[fi] = undefined;
    if ((!digest || !digest.equals(f.sha256)) && this.resumed) {
      // Bytes written by the interrupted run were lost or altered since: fetch the whole file again.
      await this.rewriteFile(fi);
      digest = await hashFile(p);
    }
    if (!digest || !digest.equals(f.sha256)) throw new CorruptionError('file', f.path, `file ${JSON.stringify(f.path)} does not match its SHA-256 after writing`);
  }

  private async rewriteFile(fi: number): Promise<void> {
    const f = this.m.files[fi];
    const offsets = new Map<number, number[]>();
    let off = 0;
    for (const ci of f.chunks) {
      const list = offsets.get(ci) ?? [];
      list.push(off);
      offsets.set(ci, list);
      off += this.m.chunks[ci].rawSizeBytes;
    }
    const fd = openSync(join(this.staging, f.path), 'w');
    try {
      const wanted = [...offsets.keys()].sort((a, b) => a - b);
      for await (const { index, raw } of readChunks(this.img, wanted, { ...this.opts.reads, pool: this.pool })) {
        for (const at of offsets.get(index)!) {
          let w = 0;
          while (w < raw.length) w += writeSync(fd, raw, w, raw.length - w, at + w);
        }
      }
    } finally {
      closeSync(fd);
    }
  }
}
