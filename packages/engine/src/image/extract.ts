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
import { openImage, readChunks, type ReadChunksOptions } from './reader.js';
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

    let state: ExtractState | undefined;
    try {
      const s = JSON.parse(await readFile(statePath, 'utf8')) as ExtractState;
      if (s.manifestSha256 === sha && Number.isSafeInteger(s.chunksDone) && s.chunksDone >= 0 && s.chunksDone <= m.chunks.length) state = s;
    } catch {
      state = undefined;
    }
    if (!state) await rm(staging, { recursive: true, force: true });
    const resumed = state !== undefined;
    const k0 = state?.chunksDone ?? 0;
    await mkdir(staging, { recursive: true });

    // Where each chunk goes: CSR lists of (file, offset).
    const n = m.chunks.length;
    const counts = new Int32Array(n + 1);
    for (const f of m.files) for (const ci of f.chunks) counts[ci + 1]++;
    for (let i = 0; i < n; i++) counts[i + 1] += counts[i];
    const fill = counts.slice(0, n);
    const locFile = new Int32Array(counts[n]);
    const locOffset = new Float64Array(counts[n]);
    const remaining = new Int32Array(m.files.length);
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

    // Folders first (and the parents of everything).
    const dirs = new Set<string>();
    for (const f of m.files) {
      if (f.type === 'dir') dirs.add(f.path);
      const p = parentOf(f.path);
      if (p !== '') dirs.add(p);
    }
    for (const d of [...dirs].sort()) await mkdir(join(staging, d), { recursive: true });

    // Per-file progress. `reread`: the running hash is unusable, hash the file from disk when it completes.
    const hashes: Array<Hash | undefined> = new Array(m.files.length);
    const nextOffset = new Float64Array(m.files.length);
    const reread = new Uint8Array(m.files.length);
    const refetch = new Set<number>();
    for (let fi = 0; fi < m.files.length; fi++) {
      const f = m.files[fi];
      if (f.type !== 'file' || f.chunks.length === 0) continue;
      if (!resumed) {
        remaining[fi] = f.chunks.length;
        continue;
      }
      if (maxChunk[fi] < k0) {
        const h = await hashFile(join(staging, f.path));
        if (h && h.equals(f.sha256)) continue; // complete and right: kept
        for (const ci of f.chunks) refetch.add(ci);
        remaining[fi] = f.chunks.length;
      } else {
        for (const ci of f.chunks) if (ci >= k0) remaining[fi]++;
      }
      reread[fi] = 1;
    }
    const order = [...[...refetch].sort((a, b) => a - b), ...Array.from({ length: n - k0 }, (_, i) => k0 + i)];
    let totalBytes = 0;
    for (const ci of order) totalBytes += m.chunks[ci].rawSizeBytes * (counts[ci + 1] - counts[ci]);

    // Writes use synchronous positional I/O on purpose: chunk-sized page-cache writes are cheaper inline than a
    // thread-pool round trip each (this is what `tar -x` does), and range reads keep running ahead meanwhile.
    const handles = new Map<number, number>();
    const opened = new Uint8Array(m.files.length);
    /** Files whose final mode is already set. */
    const moded = new Uint8Array(m.files.length);
    const getHandle = (fi: number): number => {
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
      const p = join(staging, m.files[fi].path);
      if (!resumed && !opened[fi]) {
        fd = openSync(p, 'w'); // fresh staging folder: the file does not exist yet
      } else {
        try {
          fd = openSync(p, 'r+');
        } catch {
          fd = openSync(p, 'w');
        }
      }
      opened[fi] = 1;
      handles.set(fi, fd);
      return fd;
    };
    const completeFile = async (fi: number): Promise<void> => {
      const f = m.files[fi];
      const fd = handles.get(fi);
      if (fd !== undefined) {
        handles.delete(fi);
        // Final mode now, on the open descriptor: one cheap syscall instead of a path lookup at the end.
        fchmodSync(fd, f.mode & 0o777);
        moded[fi] = 1;
        closeSync(fd);
      }
      const p = join(staging, f.path);
      let digest = reread[fi] || !hashes[fi] || nextOffset[fi] !== f.sizeBytes ? await hashFile(p) : hashes[fi]!.digest();
      hashes[fi] = undefined;
      if ((!digest || !digest.equals(f.sha256)) && resumed) {
        // Bytes written by the interrupted run were lost or altered since: fetch the whole file again.
        await rewriteFile(fi);
        digest = await hashFile(p);
      }
      if (!digest || !digest.equals(f.sha256)) throw new CorruptionError('file', f.path, `file ${JSON.stringify(f.path)} does not match its SHA-256 after writing`);
    };
    const rewriteFile = async (fi: number): Promise<void> => {
      const f = m.files[fi];
      const offsets = new Map<number, number[]>();
      let off = 0;
      for (const ci of f.chunks) {
        const list = offsets.get(ci) ?? [];
        list.push(off);
        offsets.set(ci, list);
        off += m.chunks[ci].rawSizeBytes;
      }
      const fd = openSync(join(staging, f.path), 'w');
      try {
        const wanted = [...offsets.keys()].sort((a, b) => a - b);
        for await (const { index, raw } of readChunks(img, wanted, { ...opts.reads, pool })) {
          for (const at of offsets.get(index)!) {
            let w = 0;
            while (w < raw.length) w += writeSync(fd, raw, w, raw.length - w, at + w);
          }
        }
      } finally {
        closeSync(fd);
      }
    };

    let done = 0;
    let sinceState = 0;
    let fetched = 0;
    const saveState = async (chunksDone: number): Promise<void> => {
      const tmp = statePath + '.tmp';
      await writeFile(tmp, JSON.stringify({ manifestSha256: sha, chunksDone } satisfies ExtractState));
      await rename(tmp, statePath);
    };
    if (!resumed) await saveState(0);
    const refetchCount = refetch.size;
    const pool = new CodecPool({ threads: opts.threads });
    // One pending positional write: consecutive chunks of one file that also lie back to back in one decode
    // buffer (the usual case in stream order) become a single write and a single hash update.
    let pFile = -1;
    let pBuf: Buffer | undefined;
    let pStart = 0;
    let pEnd = 0;
    let pAt = 0;
    const flushPending = (): void => {
      if (pBuf === undefined) return;
      const fi = pFile;
      const fd = getHandle(fi);
      const len = pEnd - pStart;
      let w = 0;
      while (w < len) w += writeSync(fd, pBuf, pStart + w, len - w, pAt + w);
      if (!reread[fi]) {
        if (nextOffset[fi] === pAt) {
          (hashes[fi] ??= createHash('sha256')).update(pBuf.subarray(pStart, pEnd));
          nextOffset[fi] = pAt + len;
        } else reread[fi] = 1;
      }
      pBuf = undefined;
      pFile = -1;
    };
    try {
      for await (const { index: ci, raw, endOfRead } of readChunks(img, order, { ...opts.reads, pool, reuseBuffers: true })) {
        opts.signal?.throwIfAborted();
        fetched++;
        // `raw` is a view into its read's buffer: `whole` is that buffer, `rawStart` where the chunk begins in it.
        const whole = Buffer.from(raw.buffer, 0, raw.buffer.byteLength);
        const rawStart = raw.byteOffset;
        for (let s = counts[ci]; s < counts[ci + 1]; s++) {
          const fi = locFile[s];
          if (remaining[fi] === 0) continue; // already complete and verified
          const off = locOffset[s];
          if (pBuf !== undefined && pFile === fi && pBuf.buffer === raw.buffer && pEnd === rawStart && pAt + (pEnd - pStart) === off) {
            pEnd += raw.length;
          } else {
            flushPending();
            pFile = fi;
            pBuf = whole;
            pStart = rawStart;
            pEnd = rawStart + raw.length;
            pAt = off;
          }
          done += raw.length;
          sinceState += raw.length;
          if (--remaining[fi] === 0) {
            flushPending();
            await completeFile(fi);
          }
        }
        if (endOfRead) flushPending(); // the read's buffer is recycled once we ask for the next chunk
        if (fetched > refetchCount && sinceState >= (opts.stateEveryBytes ?? EXTRACT_STATE_EVERY_BYTES)) {
          // The state promises that every chunk before ci + 1 is on disk.
          flushPending();
          sinceState = 0;
          await saveState(ci + 1);
        }
        opts.onProgress?.({ doneBytes: done, totalBytes });
      }
      flushPending();
    } finally {
      for (const fd of handles.values()) closeSync(fd);
      handles.clear();
      await pool.close();
    }

    // Everything without chunks, then links, then modes.
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
    return { files, rawBytes, chunksFetched: fetched, resumed, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    await source.close();
  }
}
