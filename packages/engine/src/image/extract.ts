// Image → game folder, byte-identical (contents, folders, exec bit, symlinks, hard links), verified and
// resumable. Chunks are fetched in stream order, verified against their ids and written to every place that uses
// them inside a staging folder beside the target (by codec workers: extract-run.ts); a small state file records
// how far the stream got. The staging folder is renamed onto the target only when every file has been written
// (and, on a resume, every file touched checked against its whole-file SHA-256).
import { createHash } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { CorruptionError, EngineError, FormatError } from '../errors.js';
import { EXTRACT_STAGING_SUFFIX, EXTRACT_STATE_SUFFIX, MAX_SYMLINK_HOPS } from '../format/constants.js';
import { isNormalEntryPath, parentOf, symlinkEscapesRoot } from '../format/paths.js';
import type { FileEntry, Manifest } from '../format/types.js';
import { openImageSource, type HttpImageSourceOptions, type ImageSource } from './image-source.js';
import { openImage, type ReadChunksOptions } from './reader.js';
import { Extraction, type ExtractProgress, type ExtractState } from './extract-run.js';
import { CodecPool } from '../codec/codec-pool.js';

export { hashFile, type ExtractProgress } from './extract-run.js';

export interface ExtractImageOptions {
  /** Image folder, http(s) base URL, or an ImageSource. */
  source: string | URL | ImageSource;
  /** Target folder; must not exist or be empty. */
  outDir: string;
  http?: HttpImageSourceOptions;
  /** `parallelReads`: pack reads in flight, each then decoded and written (default EXTRACT_READS_IN_FLIGHT). */
  reads?: Omit<ReadChunksOptions, 'pool'>;
  /** Worker threads that decode, verify and write (default: all cores; 0 = calling thread only). */
  threads?: number;
  /** Save resume state after this many written bytes (default EXTRACT_STATE_EVERY_BYTES). */
  stateEveryBytes?: number;
  onProgress?: (p: ExtractProgress) => void;
  /** Cancels the extraction at the next read (throws signal.reason); the staging folder is kept for a resume. */
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
  // Started first: the workers load while the manifest is read and the folders are made.
  const pool = new CodecPool({ threads: opts.threads, tasksPerThread: 2 });
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
    const run = new Extraction(img, opts, pool, staging, statePath, state);
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
    await pool.close();
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
