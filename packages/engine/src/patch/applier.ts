// Writes B into applyPatch's output folder: files identical to a file of A are copied whole (linked or
// reflinked when allowed), the others are assembled chunk by chunk from A's spans, earlier bytes of B and the
// data part's runs. Every file is then verified whole on the hash pool, beside the assembly.

import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { chmod, copyFile, link, lstat, mkdir, open, symlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileEntry, Manifest } from '../format/types.js';
import type { ApplyInternals, ApplyPatchOptions } from './apply.js';
import { BaseReader } from './apply-base.js';
import { DataRecords, type DataReader } from './apply-data.js';
import { dirMode, fileMode, foldersOf, syncPath } from './apply-target.js';
import { BASE_PART_NAME, DATA_PART_NAME, MANIFEST_PART_NAME } from './constants.js';
import { PatchCorruptError, PatchInputError, WrongBaseError } from './errors.js';
import type { FileDigest, HashPool } from './hash-pool.js';

/** Errors of a forced reflink that mean "not on this file system" (then files are copied). */
const CLONE_UNSUPPORTED = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS', 'ENOTTY', 'EPERM', 'EBADF']);
/** Largest read of consecutive A chunks copied into B (a single larger chunk is read alone). */
const SPAN_BYTES = 8 << 20;

const hex = (h: Uint8Array) => Buffer.from(h.buffer, h.byteOffset, h.byteLength).toString('hex');

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

/** One apply run. `closeAll()` must be called after `run()`, whether it succeeded or not. */
export class Applier {
  copiedBytes = 0;
  patchedBytes = 0;
  /** For each chunk of B, the index of the same chunk in A, or -1 when A lacks it. */
  private readonly aOfB: Int32Array;
  private readonly aLoc: Array<ALoc | undefined>;
  private readonly aFileBySha = new Map<string, number>();
  /** Where each new chunk of B was first written: (B file, offset). */
  private readonly bLoc: Array<ALoc | undefined>;
  private readonly base: BaseReader;
  private readonly linkedA = new Set<number>();
  /** Whether reflinks work between A's and B's folders: unknown until the first whole-file copy. */
  private cloneWorks: boolean | undefined;
  /** Whole-file checks of assembled files (on the hash pool) and fsyncs, running beside the assembly. */
  private readonly verifications: Array<Promise<void>> = [];
  /** Reusable read buffers for copied spans (a few are in flight at once); large buffers churned per span cost GC time. */
  private readonly spanBuffers: Buffer[] = [];
  private records!: DataRecords;
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
    this.base = new BaseReader(a, opts.fromDir);
  }

  async run(reader: DataReader): Promise<void> {
    this.records = new DataRecords(reader, this.b, this.base);
    await reader.header();
    const out = this.opts.outDir;
    // Validated: no entry of B is a link or file above another, and links are created last, so no
    // folder is ever made through a link.
    for (const d of foldersOf(this.b)) await mkdir(join(out, d), { recursive: true });
    await this.writeFiles();
    await this.records.checkAllUsed();
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

  async closeAll(): Promise<void> {
    await this.base.closeAll();
  }

  /** Every regular file of B, written and verified (the first failure is thrown once all work has stopped). */
  private async writeFiles(): Promise<void> {
    const out = this.opts.outDir;
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
  }

  private progress(n: number): void {
    this.done += n;
    this.opts.onProgress?.({ phase: 'write', doneBytes: this.done, totalBytes: this.total });
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
          const got = await this.base.readA(loc.file, loc.offset, idx, false, span);
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
        const rec = await this.records.peek();
        if (!rec || rec.run.bFile !== fi || rec.run.ordinal !== k) {
          throw new PatchCorruptError(DATA_PART_NAME, `expected the run of ${f.path} chunk ${k}`, rec?.offset ?? this.records.pos);
        }
        this.records.take();
        const raw = await this.records.decodeRun(rec.run, rec.payload, rec.offset, f, k);
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
}
