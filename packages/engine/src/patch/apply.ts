// applyPatch: A's installed folder + a patch -> B in a new folder (docs/FORMATS.md, "## Patch").

import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { chmod, copyFile, link, lstat, mkdir, open, readdir, readFile, symlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_SYMLINK_HOPS } from '../format/constants.js';
import { parentOf, symlinkEscapesRoot } from '../format/paths.js';
import type { FileEntry, Manifest } from '../format/types.js';
import { DATA_PART_NAME, ManifestPartKind, MANIFEST_PART_NAME, BASE_PART_NAME, MAX_REF_BYTES, MAX_STREAM_REF_BYTES, RecordTag, RunCodec } from './constants.js';
import { PatchCorruptError, PatchInputError, PatchUnsupportedError, UnsafePathError, WrongBaseError } from './errors.js';
import {
  DATA_HEADER_BYTES,
  decodeDataPartHeader,
  decodeManifestPartHeader,
  decodeRecordHeader,
  MANIFEST_HEADER_BYTES,
  MAX_RUN_HEADER_BYTES,
  type PatchPointer,
  type RefSegment,
  type RunHeader,
  type StreamHeader,
} from './format.js';
import type { PatchProgress } from './make.js';
import { canonicalManifestId, decodeManifestCanonical, encodeManifestCanonical } from './manifest-codec.js';
import { HashPool, type FileDigest } from './hash-pool.js';
import { openPatch } from './patch-source.js';
import { zstdDecompressExact } from './zstd.js';

export interface ApplyPatchOptions {
  /** Patch folder or http(s) URL of one. */
  patch: string;
  /** A's installed folder (read only). */
  fromDir: string;
  /** Where B is written; must not exist or be empty. */
  outDir: string;
  /** A's manifest when the caller keeps it; otherwise the patch's base-manifest part is used. */
  fromManifest?: Manifest;
  onProgress?: (p: PatchProgress) => void;
}

export interface ApplyPatchResult {
  pointer: PatchPointer;
  /** B's manifest. */
  manifest: Manifest;
  /** A's manifest (the one given, or the patch's base-manifest part): what the installed folder was expected to hold. */
  baseManifest: Manifest;
  /** Bytes of B taken from A's files. */
  copiedBytes: number;
  /** Bytes of B decoded from the patch. */
  patchedBytes: number;
}

/** Internal knobs used by applyPatchInPlace. */
export interface ApplyInternals {
  /** Hard-link (instead of copy) B files identical to an A file with the same mode. */
  linkUnchanged?: boolean;
  /** fsync every written file before returning (the in-place swap must only ever expose durable bytes). */
  durable?: boolean;
}

/** Threads hashing B's finished files beside the main thread's reads and writes. */
const HASH_THREADS = 2;
/** Errors of a forced reflink that mean "not on this file system" (then files are copied). */
const CLONE_UNSUPPORTED = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS', 'ENOTTY', 'EPERM', 'EBADF']);
/** Largest read of consecutive A chunks copied into B (a single larger chunk is read alone). */
const SPAN_BYTES = 8 << 20;

const hex = (h: Uint8Array) => Buffer.from(h.buffer, h.byteOffset, h.byteLength).toString('hex');

/**
 * Builds B into `outDir` from A's files and the patch. Every chunk of A that is read is checked
 * against A's manifest and every chunk and whole file of B against B's manifest.
 * Errors: PatchCorruptError (damaged patch, names the part), PatchUnsupportedError,
 * WrongBaseError (A's folder differs, names the file), UnsafePathError, PatchInputError.
 * On error `outDir` may hold a partial B (never anything outside it).
 */
export async function applyPatch(opts: ApplyPatchOptions, internals: ApplyInternals = {}): Promise<ApplyPatchResult> {
  // Threads boot while the manifests load.
  const pool = new HashPool(HASH_THREADS);
  const patch = await openPatch(opts.patch).catch(async (err: unknown) => {
    await pool.close();
    throw err;
  });
  try {
    const { a, b } = await loadManifests(patch.pointer, opts.fromManifest, (role) => patch.partPath(role));
    validateTarget(b);
    validateBase(a);
    const dataPath = await patch.partPath('data');
    await prepareEmptyDir(opts.outDir);
    const applier = new Applier(a, b, opts, internals, pool);
    const dataFh = await open(dataPath, 'r');
    try {
      await applier.run(new DataReader(dataFh, (await dataFh.stat()).size, patch.pointer.to.manifestId));
    } finally {
      await dataFh.close();
      await applier.closeAll();
    }
    return { pointer: patch.pointer, manifest: b, baseManifest: a, copiedBytes: applier.copiedBytes, patchedBytes: applier.patchedBytes };
  } finally {
    await patch.close();
    await pool.close();
  }
}

/**
 * B's manifest from a patch folder, given A's (the installed build's) manifest: reads only the pointer and the
 * manifest part, never the base-manifest part. Errors: PatchInputError when `fromManifest` is not the patch's
 * base, PatchCorruptError / PatchUnsupportedError for damaged or unknown parts.
 */
export async function readPatchTarget(patchDir: string, fromManifest: Manifest): Promise<Manifest> {
  const patch = await openPatch(patchDir);
  try {
    return (await loadManifests(patch.pointer, fromManifest, (role) => patch.partPath(role))).b;
  } finally {
    await patch.close();
  }
}

/**
 * Decodes a patch's base manifest part (role `baseManifest`, the file at `partFile`) and checks it is the build
 * `baseId` (the pointer's from.manifestId). Lets a launcher see whether a patch made from another variant of its
 * build (same files, another stream order) fits its files. Errors: PatchCorruptError.
 */
export async function readPatchBase(partFile: string, baseId: string): Promise<Manifest> {
  const enc = await readManifestPart(partFile, BASE_PART_NAME, baseId);
  return decodeManifestCanonical(enc, (d, o) => new PatchCorruptError(BASE_PART_NAME, d, o));
}

/** Decodes A's and B's manifests and checks them against the pointer's ids. */
export async function loadManifests(
  pointer: PatchPointer,
  fromManifest: Manifest | undefined,
  partPath: (role: 'manifest' | 'baseManifest') => Promise<string>,
): Promise<{ a: Manifest; b: Manifest }> {
  let encA: Buffer;
  let a: Manifest;
  if (fromManifest) {
    encA = encodeManifestCanonical(fromManifest);
    if (canonicalManifestId(encA) !== pointer.from.manifestId) throw new PatchInputError('the given manifest is not the base build of this patch');
    a = fromManifest;
  } else {
    encA = await readManifestPart(await partPath('baseManifest'), BASE_PART_NAME, pointer.from.manifestId);
    a = decodeManifestCanonical(encA, (d, o) => new PatchCorruptError(BASE_PART_NAME, d, o));
  }
  const encB = await readManifestPart(await partPath('manifest'), MANIFEST_PART_NAME, pointer.to.manifestId, encA, pointer.from.manifestId);
  const b = decodeManifestCanonical(encB, (d, o) => new PatchCorruptError(MANIFEST_PART_NAME, d, o));
  return { a, b };
}

async function readManifestPart(path: string, part: string, expectId: string, base?: Buffer, baseId?: string): Promise<Buffer> {
  const buf = await readFile(path);
  const h = decodeManifestPartHeader(part, buf.subarray(0, MANIFEST_HEADER_BYTES));
  if (h.targetId !== expectId) throw new PatchCorruptError(part, 'manifest id does not match the pointer');
  let dict: Buffer | undefined;
  if (h.kind === ManifestPartKind.DeltaFromBase) {
    if (!base || h.baseId !== baseId) throw new PatchCorruptError(part, 'delta against another base manifest');
    dict = base;
  } else if (h.kind !== ManifestPartKind.Full) {
    throw new PatchUnsupportedError(part, `manifest kind ${h.kind}`);
  }
  let enc: Buffer;
  try {
    enc = zstdDecompressExact(buf.subarray(MANIFEST_HEADER_BYTES), h.rawSize, dict);
  } catch (err) {
    throw new PatchCorruptError(part, `zstd: ${(err as Error).message}`, MANIFEST_HEADER_BYTES);
  }
  if (canonicalManifestId(enc) !== expectId) throw new PatchCorruptError(part, 'decoded manifest hash does not match');
  return enc;
}

/** A path is safe when relative, '/'-separated, without empty, '.' or '..' components or NUL. */
export function checkRelativePath(p: string): void {
  if (p === '' || p.startsWith('/') || p.includes('\\') || p.includes('\0')) throw new UnsafePathError(p, 'not a relative path');
  for (const part of p.split('/')) if (part === '' || part === '.' || part === '..') throw new UnsafePathError(p, 'bad path component');
}

/**
 * B's entries must stay inside the output folder: safe paths, unique, no entry beneath a file, a
 * symlink or a hard link of B (so nothing is ever written through a link), hard links to regular
 * files of B, symlinks that resolve inside the root even when followed through other symlinks of B.
 * A parent that is no entry of B is an implicit folder (tars without folder entries): the applier
 * creates it, as extract does. Throws UnsafePathError naming the offending entry.
 */
export function validateTarget(m: Manifest): void {
  const types = new Map<string, FileEntry['type']>();
  const symlinks = new Map<string, string>();
  for (const f of m.files) {
    checkRelativePath(f.path);
    if (types.has(f.path)) throw new UnsafePathError(f.path, 'duplicate path');
    types.set(f.path, f.type);
    if (f.type === 'symlink') symlinks.set(f.path, f.linkTarget);
  }
  // Folders (explicit or implicit) whose ancestors are known to be folders or implicit.
  const checked = new Set<string>();
  for (const f of m.files) {
    for (let p = parentOf(f.path); p !== '' && !checked.has(p); p = parentOf(p)) {
      const t = types.get(p);
      if (t !== undefined && t !== 'dir') throw new UnsafePathError(f.path, `lies beneath the ${t} ${p}`);
      checked.add(p);
    }
    if (f.type === 'hardlink') {
      checkRelativePath(f.linkTarget);
      if (types.get(f.linkTarget) !== 'file') throw new UnsafePathError(f.path, 'hard link to something that is not a file of the build');
    }
    if (f.type === 'symlink') {
      if (f.linkTarget.startsWith('/') || f.linkTarget === '') throw new UnsafePathError(f.path, 'absolute symlink');
      if (symlinkEscapesRoot(f.path, (q) => symlinks.get(q), MAX_SYMLINK_HOPS)) throw new UnsafePathError(f.path, 'symlink points outside the root');
    }
  }
}

/**
 * Permission bits applied to B's files: rwx for user, group and others only, as extract does (a
 * patch never creates setuid, setgid or sticky files).
 */
export const fileMode = (mode: number): number => mode & 0o777;
/** Folders additionally stay readable, writable and searchable by their owner (as extract does). */
export const dirMode = (mode: number): number => (mode & 0o777) | 0o700;

/** fsync of a file's data and inode, or of a folder's entries. */
async function syncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Every folder B needs: its folder entries and the implicit parents of all entries, parents first. */
export function foldersOf(m: Manifest): string[] {
  const dirs = new Set<string>();
  for (const f of m.files) {
    if (f.type === 'dir') dirs.add(f.path);
    for (let p = parentOf(f.path); p !== '' && !dirs.has(p); p = parentOf(p)) dirs.add(p);
  }
  return [...dirs].sort();
}

function validateBase(m: Manifest): void {
  for (const f of m.files) if (f.type === 'file') checkRelativePath(f.path);
}

async function prepareEmptyDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length > 0) throw new PatchInputError(`output folder is not empty: ${dir}`);
}

/** Sequential reader of the data part's records. */
class DataReader {
  private buf = Buffer.alloc(0);
  private bufPos = 0; // file offset of buf[0]
  pos: number; // file offset of the next unread byte
  runsRead = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
    private readonly targetId: string,
  ) {
    this.pos = 0;
  }

  private async fill(n: number): Promise<Buffer> {
    const want = Math.min(n, this.size - this.pos);
    if (this.pos >= this.bufPos && this.pos + want <= this.bufPos + this.buf.length) {
      return this.buf.subarray(this.pos - this.bufPos, this.pos - this.bufPos + want);
    }
    const len = Math.max(want, 1 << 20);
    const b = Buffer.allocUnsafe(Math.min(len, this.size - this.pos));
    const { bytesRead } = await this.fh.read(b, 0, b.length, this.pos);
    this.buf = b.subarray(0, bytesRead);
    this.bufPos = this.pos;
    return this.buf.subarray(0, Math.min(want, bytesRead));
  }

  async header(): Promise<void> {
    const h = decodeDataPartHeader(DATA_PART_NAME, await this.fill(DATA_HEADER_BYTES));
    if (h.targetId !== this.targetId) throw new PatchCorruptError(DATA_PART_NAME, 'data belongs to another target build', 0);
    this.pos = DATA_HEADER_BYTES;
  }

  /** Next run or stream record with its payload, or undefined at a valid end record (checked to be the last bytes). */
  async next(): Promise<{ run: RunHeader; payload: Buffer; offset: number } | { stream: StreamHeader; payload: Buffer; offset: number } | undefined> {
    const offset = this.pos;
    const rec = decodeRecordHeader(DATA_PART_NAME, await this.fill(MAX_RUN_HEADER_BYTES), offset);
    this.pos += rec.headerBytes;
    if (rec.tag === RecordTag.End) {
      if (rec.runCount !== this.runsRead) throw new PatchCorruptError(DATA_PART_NAME, `end record counts ${rec.runCount} runs, read ${this.runsRead}`, offset);
      if (this.pos !== this.size) throw new PatchCorruptError(DATA_PART_NAME, 'bytes after the end record', this.pos);
      return undefined;
    }
    const head = rec.tag === RecordTag.Run ? rec.run : rec.stream;
    // A view, not a copy: fill() never overwrites a buffer it has handed out, it allocates a new one.
    const payload = await this.fill(head.payloadSize);
    if (payload.length !== head.payloadSize) throw new PatchCorruptError(DATA_PART_NAME, 'truncated record payload', offset);
    this.pos += payload.length;
    if (rec.tag === RecordTag.Stream) return { stream: rec.stream, payload, offset };
    this.runsRead++;
    return { run: rec.run, payload, offset };
  }
}

interface CopiedSpan {
  /** Offset in the B file being written. */
  offset: number;
  /** B chunk indexes of the span. */
  chunks: number[];
  aFile: number;
  aOffset: number;
}

interface ALoc {
  file: number;
  offset: number;
}

class Applier {
  copiedBytes = 0;
  patchedBytes = 0;
  /** For each chunk of B, the index of the same chunk in A, or -1 when A lacks it. */
  private readonly aOfB: Int32Array;
  private readonly aLoc: Array<ALoc | undefined>;
  private readonly aFileBySha = new Map<string, number>();
  /** Where each new chunk of B was first written: (B file, offset). */
  private readonly bLoc: Array<ALoc | undefined>;
  private readonly aHandles = new Map<number, FileHandle>();
  private readonly linkedA = new Set<number>();
  /** Whether reflinks work between A's and B's folders: unknown until the first whole-file copy. */
  private cloneWorks: boolean | undefined;
  /** Whole-file checks of assembled files (on the hash pool) and fsyncs, running beside the assembly. */
  private readonly verifications: Array<Promise<void>> = [];
  private readonly aOffsets = new Map<number, number[]>();
  /** Reusable read buffers for copied spans (a few are in flight at once); large buffers churned per span cost GC time. */
  private readonly spanBuffers: Buffer[] = [];
  private pending: { run: RunHeader; payload: Buffer; offset: number } | undefined | null = null;
  /** The decoded stream record whose bytes the next stream-codec runs consume, in order. */
  private stream: { buf: Buffer; pos: number; offset: number } | undefined;
  private reader!: DataReader;
  private done = 0;
  private readonly total: number;

  constructor(
    private readonly a: Manifest,
    private readonly b: Manifest,
    private readonly opts: ApplyPatchOptions,
    private readonly internals: ApplyInternals,
    private readonly pool: HashPool,
  ) {
    const aByHash = new Map<string, number>();
    a.chunks.forEach((c, i) => aByHash.set(hex(c.hash), i));
    this.aOfB = Int32Array.from(b.chunks, (c) => aByHash.get(hex(c.hash)) ?? -1);
    this.aLoc = new Array(a.chunks.length);
    a.files.forEach((f, fi) => {
      if (f.type !== 'file') return;
      this.aFileBySha.set(hex(f.sha256), fi);
      let off = 0;
      for (const ci of f.chunks) {
        if (!this.aLoc[ci]) this.aLoc[ci] = { file: fi, offset: off };
        off += a.chunks[ci].rawSizeBytes;
      }
    });
    this.bLoc = new Array(b.chunks.length);
    this.total = b.files.reduce((s, f) => s + f.sizeBytes, 0);
  }

  async run(reader: DataReader): Promise<void> {
    this.reader = reader;
    await reader.header();
    const out = this.opts.outDir;
    // Validated: no entry of B is a link or file above another, and links are created last, so no
    // folder is ever made through a link.
    for (const d of foldersOf(this.b)) await mkdir(join(out, d), { recursive: true });
    // Files identical to a file of A are copied whole, a few at a time, beside the sequential pass
    // that assembles the other files (which consumes the data part in order).
    const whole: Array<[number, FileEntry]> = [];
    const assembled: Array<[number, FileEntry]> = [];
    this.b.files.forEach((f, fi) => {
      if (f.type !== 'file') return;
      const sameA = this.aFileBySha.get(hex(f.sha256));
      const allInA = f.chunks.every((ci) => this.aOfB[ci] >= 0);
      if (sameA !== undefined && this.a.files[sameA].sizeBytes === f.sizeBytes && allInA) whole.push([sameA, f]);
      else assembled.push([fi, f]);
    });
    let nextWhole = 0;
    const copier = async () => {
      while (nextWhole < whole.length) {
        const [ai, f] = whole[nextWhole++];
        await this.copyWhole(ai, f, join(out, f.path));
      }
    };
    const copiers = [copier(), copier(), copier()];
    const results = await Promise.allSettled([
      ...copiers,
      (async () => {
        for (const [fi, f] of assembled) await this.writeFile(fi, f);
      })(),
    ]);
    const checks = await Promise.allSettled(this.verifications);
    for (const r of [...results, ...checks]) if (r.status === 'rejected') throw r.reason;
    const left = await this.peek();
    if (this.stream) throw new PatchCorruptError(DATA_PART_NAME, 'stream bytes left unused', this.stream.offset);
    if (left) throw new PatchCorruptError(DATA_PART_NAME, `run for file #${left.run.bFile} chunk ${left.run.ordinal} was never used`, left.offset);
    for (const f of this.b.files) {
      if (f.type === 'hardlink') await link(join(out, f.linkTarget), join(out, f.path));
      else if (f.type === 'symlink') await symlink(f.linkTarget, join(out, f.path));
    }
    // Directory modes last (a read-only directory would refuse its own content).
    for (let i = this.b.files.length - 1; i >= 0; i--) {
      const f = this.b.files[i];
      if (f.type === 'dir') await chmod(join(out, f.path), dirMode(f.mode));
    }
    if (this.internals.durable) {
      // Files were fsynced as they were finished (in the background); the entries naming them are
      // made durable here, deepest folders first, so the caller's rename only ever exposes a durable tree.
      const dirs = foldersOf(this.b).reverse();
      for (const d of [...dirs, '']) await syncPath(join(out, d));
    }
  }

  /** The next run record; stream records met on the way are decoded and become the open stream. */
  private async peek() {
    while (this.pending === null) {
      const rec = await this.reader.next();
      if (rec && 'stream' in rec) {
        if (this.stream) throw new PatchCorruptError(DATA_PART_NAME, 'stream record before the previous stream was used up', rec.offset);
        this.stream = { buf: await this.decodeStream(rec.stream, rec.payload, rec.offset), pos: 0, offset: rec.offset };
        continue;
      }
      this.pending = rec;
    }
    return this.pending;
  }

  /** Reads and verifies the stream's reference spans of A, then decodes its frame into exactly rawSize bytes. */
  private async decodeStream(h: StreamHeader, payload: Buffer, offset: number): Promise<Buffer> {
    const dict = await this.readRefs(h.refs, MAX_STREAM_REF_BYTES, offset);
    try {
      return zstdDecompressExact(payload, h.rawSize, dict);
    } catch (err) {
      throw new PatchCorruptError(DATA_PART_NAME, `zstd: ${(err as Error).message}`, offset);
    }
  }

  /** Concatenated bytes of reference segments of A, each chunk checked against A's manifest. */
  private async readRefs(refs: RefSegment[], maxBytes: number, offset: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let size = 0;
    for (const s of refs) {
      const af = this.a.files[s.aFile];
      if (!af || af.type !== 'file' || s.count === 0 || s.ordinal + s.count > af.chunks.length) {
        throw new PatchCorruptError(DATA_PART_NAME, 'reference outside the base build', offset);
      }
      const idx = af.chunks.slice(s.ordinal, s.ordinal + s.count);
      size += idx.reduce((t, ci) => t + this.a.chunks[ci].rawSizeBytes, 0);
      if (size > maxBytes) throw new PatchCorruptError(DATA_PART_NAME, 'reference too large', offset);
      parts.push(await this.readA(s.aFile, this.offsetsOf(s.aFile)[s.ordinal], idx));
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  private progress(n: number): void {
    this.done += n;
    this.opts.onProgress?.({ phase: 'write', doneBytes: this.done, totalBytes: this.total });
  }

  private async aHandle(fi: number): Promise<FileHandle> {
    let fh = this.aHandles.get(fi);
    if (fh) return fh;
    const path = this.a.files[fi].path;
    try {
      const st = await lstat(join(this.opts.fromDir, path));
      if (!st.isFile()) throw new WrongBaseError(path, 'not a regular file');
      fh = await open(join(this.opts.fromDir, path), 'r');
    } catch (err) {
      if (err instanceof WrongBaseError) throw err;
      throw new WrongBaseError(path, `cannot open (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (this.aHandles.size >= 64) {
      const [k, v] = this.aHandles.entries().next().value as [number, FileHandle];
      this.aHandles.delete(k);
      await v.close();
    }
    this.aHandles.set(fi, fh);
    return fh;
  }

  async closeAll(): Promise<void> {
    for (const fh of this.aHandles.values()) await fh.close();
    this.aHandles.clear();
  }

  /**
   * Reads A chunks `chunkIdx` (consecutive in A file fi from `offset`) and, unless `verify` is false,
   * checks each against A's manifest. Reads into `into` when it is large enough.
   */
  private async readA(fi: number, offset: number, chunkIdx: number[], verify = true, into?: Buffer): Promise<Buffer> {
    const size = chunkIdx.reduce((s, ci) => s + this.a.chunks[ci].rawSizeBytes, 0);
    const fh = await this.aHandle(fi);
    const buf = into && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
    const { bytesRead } = await fh.read(buf, 0, size, offset);
    const path = this.a.files[fi].path;
    if (bytesRead !== size) throw new WrongBaseError(path, `shorter than expected (read ${bytesRead} of ${size} bytes at ${offset})`);
    if (!verify) return buf;
    let p = 0;
    for (const ci of chunkIdx) {
      const c = this.a.chunks[ci];
      if (!createHash('sha256').update(buf.subarray(p, p + c.rawSizeBytes)).digest().equals(c.hash)) {
        throw new WrongBaseError(path, `bytes at offset ${offset + p} differ`);
      }
      p += c.rawSizeBytes;
    }
    return buf;
  }

  private async writeFile(fi: number, f: FileEntry): Promise<void> {
    const outPath = join(this.opts.outDir, f.path);
    const fh = await open(outPath, 'w+');
    const sources: CopiedSpan[] = [];
    let off = 0;
    // Writes are queued (a few in flight) so the next read and hash overlap the previous write.
    const queue: Array<Promise<void>> = [];
    const writeAt = async (buf: Buffer, at: number) => {
      let w = 0;
      while (w < buf.length) w += (await fh.write(buf, w, buf.length - w, at + w)).bytesWritten;
    };
    const drain = async () => {
      while (queue.length > 0) await queue.shift();
    };
    const put = async (buf: Buffer, release?: () => void) => {
      const p = writeAt(buf, off).then(release);
      p.catch(() => undefined);
      queue.push(p);
      off += buf.length;
      while (queue.length > 3) await queue.shift();
    };
    try {
      let k = 0;
      while (k < f.chunks.length) {
        const ci = f.chunks[k];
        const c = this.b.chunks[ci];
        const ai = this.aOfB[ci];
        if (ai >= 0) {
          // Coalesce chunks that sit one after another in the same A file (bounded read size).
          const loc = this.aLoc[ai];
          if (!loc) throw new PatchCorruptError(BASE_PART_NAME, `chunk of ${f.path} is in no file of the base`);
          const idx = [ai];
          let end = loc.offset + c.rawSizeBytes;
          let bytes = c.rawSizeBytes;
          while (k + idx.length < f.chunks.length) {
            const nai = this.aOfB[f.chunks[k + idx.length]];
            const nl = nai < 0 ? undefined : this.aLoc[nai];
            if (!nl || nl.file !== loc.file || nl.offset !== end || bytes + this.a.chunks[nai].rawSizeBytes > SPAN_BYTES) break;
            idx.push(nai);
            end += this.a.chunks[nai].rawSizeBytes;
            bytes += this.a.chunks[nai].rawSizeBytes;
          }
          // Copied spans are verified by B's whole-file hash (one hashing pass over B, on the pool);
          // only on a mismatch are they re-checked chunk by chunk to name the culprit.
          sources.push({ offset: off, chunks: f.chunks.slice(k, k + idx.length), aFile: loc.file, aOffset: loc.offset });
          const span = this.spanBuffers.pop() ?? Buffer.allocUnsafe(SPAN_BYTES);
          const got = await this.readA(loc.file, loc.offset, idx, false, span);
          const recycle = () => void this.spanBuffers.push(span);
          if (got.buffer === span.buffer) await put(got, recycle);
          else {
            recycle();
            await put(got);
          }
          this.copiedBytes += bytes;
          this.progress(bytes);
          k += idx.length;
          continue;
        }
        const prev = this.bLoc[ci];
        if (prev) {
          await drain();
          const src = prev.file === fi ? fh : await open(join(this.opts.outDir, this.b.files[prev.file].path), 'r');
          try {
            const buf = Buffer.allocUnsafe(c.rawSizeBytes);
            await src.read(buf, 0, buf.length, prev.offset);
            if (!createHash('sha256').update(buf).digest().equals(c.hash)) throw new PatchInputError(`output file ${this.b.files[prev.file].path} changed while applying`);
            await put(buf);
          } finally {
            if (src !== fh) await src.close();
          }
          this.progress(c.rawSizeBytes);
          k++;
          continue;
        }
        const rec = await this.peek();
        if (!rec || rec.run.bFile !== fi || rec.run.ordinal !== k) {
          throw new PatchCorruptError(DATA_PART_NAME, `expected the run of ${f.path} chunk ${k}`, rec?.offset ?? this.reader.pos);
        }
        this.pending = null;
        const raw = await this.decodeRun(rec.run, rec.payload, rec.offset, f, k);
        let p = 0;
        for (let j = 0; j < rec.run.count; j++) {
          const cj = this.b.chunks[f.chunks[k + j]];
          const piece = raw.subarray(p, p + cj.rawSizeBytes);
          if (!createHash('sha256').update(piece).digest().equals(cj.hash)) {
            throw new PatchCorruptError(DATA_PART_NAME, `chunk ${k + j} of ${f.path} does not match its hash`, rec.offset);
          }
          if (!this.bLoc[f.chunks[k + j]]) this.bLoc[f.chunks[k + j]] = { file: fi, offset: off + p };
          p += cj.rawSizeBytes;
        }
        await put(raw);
        this.patchedBytes += raw.length;
        this.progress(raw.length);
        k += rec.run.count;
      }
      await drain();
    } finally {
      await Promise.allSettled(queue);
      await fh.close();
    }
    await chmod(outPath, fileMode(f.mode));
    // fsync off the sequential assembly path: it only has to be done before run() returns.
    if (this.internals.durable) this.background(syncPath(outPath));
    const check = this.pool.hashFile(outPath).then(async (d) => {
      if (d.size === f.sizeBytes && d.sha256 === hex(f.sha256)) return;
      const rfh = await open(outPath, 'r');
      try {
        await this.diagnose(rfh, sources);
      } finally {
        await rfh.close();
      }
      throw new PatchCorruptError(MANIFEST_PART_NAME, `file ${f.path} does not match its hash`);
    });
    this.background(check);
  }

  /**
   * Reflinks `src` to `dst` (no data written; B's copy is then read once to be verified). False,
   * and no further attempts in this apply, when the file system cannot clone.
   */
  private async tryClone(src: string, dst: string): Promise<boolean> {
    try {
      await copyFile(src, dst, fsConstants.COPYFILE_FICLONE_FORCE);
      this.cloneWorks = true;
      return true;
    } catch (err) {
      if (!CLONE_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      this.cloneWorks = false;
      return false;
    }
  }

  /** Work that must finish (and not fail) before run() returns. */
  private background(p: Promise<void>): void {
    p.catch(() => undefined);
    this.verifications.push(p);
  }

  /** After a whole-file mismatch: finds the copied span of A that was wrong and names A's file. */
  private async diagnose(fh: FileHandle, sources: CopiedSpan[]): Promise<void> {
    for (const s of sources) {
      let p = 0;
      for (const ci of s.chunks) {
        const c = this.b.chunks[ci];
        const buf = Buffer.allocUnsafe(c.rawSizeBytes);
        await fh.read(buf, 0, buf.length, s.offset + p);
        if (!createHash('sha256').update(buf).digest().equals(c.hash)) {
          throw new WrongBaseError(this.a.files[s.aFile].path, `bytes at offset ${s.aOffset + p} differ`);
        }
        p += c.rawSizeBytes;
      }
    }
  }

  private async copyWhole(ai: number, f: FileEntry, outPath: string): Promise<void> {
    const af = this.a.files[ai];
    const src = join(this.opts.fromDir, af.path);
    const st = await lstat(src).catch(() => undefined);
    if (!st?.isFile()) throw new WrongBaseError(af.path, 'missing or not a regular file');
    // Link only the first B file taken from a given A file, and only an inode with no other names:
    // B's distinct files must stay distinct inodes.
    const linked = this.internals.linkUnchanged === true && (st.mode & 0o7777) === fileMode(f.mode) && st.nlink === 1 && !this.linkedA.has(ai);
    let digest: FileDigest;
    if (linked) {
      this.linkedA.add(ai);
      await link(src, outPath);
      digest = await this.pool.hashFile(outPath);
    } else if (this.cloneWorks !== false && (await this.tryClone(src, outPath))) {
      digest = await this.pool.hashFile(outPath);
    } else {
      // One pass on a hashing thread: the bytes hashed are exactly the bytes written.
      digest = await this.pool.copyAndHash(src, outPath);
    }
    const { size, sha256 } = digest;
    if (size !== f.sizeBytes || sha256 !== hex(f.sha256)) throw new WrongBaseError(af.path, 'content differs from the base build');
    if (!linked) {
      await chmod(outPath, fileMode(f.mode));
      if (this.internals.durable) this.background(syncPath(outPath));
    }
    this.copiedBytes += size;
    this.progress(size);
  }

  private async decodeRun(run: RunHeader, payload: Buffer, offset: number, f: FileEntry, k: number): Promise<Buffer> {
    let expect = 0;
    if (k + run.count > f.chunks.length) throw new PatchCorruptError(DATA_PART_NAME, `run goes past the end of ${f.path}`, offset);
    for (let j = 0; j < run.count; j++) expect += this.b.chunks[f.chunks[k + j]].rawSizeBytes;
    if (expect !== run.rawSize) throw new PatchCorruptError(DATA_PART_NAME, `run size ${run.rawSize} does not match ${f.path}`, offset);
    if (run.codec === RunCodec.Raw) {
      if (payload.length !== run.rawSize) throw new PatchCorruptError(DATA_PART_NAME, 'raw run of the wrong size', offset);
      return payload;
    }
    if (run.codec === RunCodec.Stream) {
      const st = this.stream;
      if (!st || st.buf.length - st.pos < run.rawSize) throw new PatchCorruptError(DATA_PART_NAME, 'stream run without enough stream bytes', offset);
      const out = st.buf.subarray(st.pos, st.pos + run.rawSize);
      st.pos += run.rawSize;
      if (st.pos === st.buf.length) this.stream = undefined;
      return out;
    }
    if (this.stream) throw new PatchCorruptError(DATA_PART_NAME, 'stream bytes left unused before another run', this.stream.offset);
    const dict = run.codec === RunCodec.ZstdDelta ? await this.readRefs(run.refs, MAX_REF_BYTES, offset) : undefined;
    try {
      return zstdDecompressExact(payload, run.rawSize, dict);
    } catch (err) {
      throw new PatchCorruptError(DATA_PART_NAME, `zstd: ${(err as Error).message}`, offset);
    }
  }

  private offsetsOf(fi: number): number[] {
    let o = this.aOffsets.get(fi);
    if (!o) {
      o = [0];
      for (const ci of this.a.files[fi].chunks) o.push(o[o.length - 1] + this.a.chunks[ci].rawSizeBytes);
      this.aOffsets.set(fi, o);
    }
    return o;
  }
}
