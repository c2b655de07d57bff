// Writes B into applyPatch's output folder: files identical to a file of A are copied whole (linked or
// reflinked when allowed) and verified on the hash pool; the others are assembled chunk by chunk from A's spans,
// earlier bytes of B and the data part's runs by jobs on the codec workers (apply-job.ts), which check every
// chunk before writing it and every file whole once written.

import { constants as fsConstants } from 'node:fs';
import { chmod, copyFile, link, lstat, mkdir, open, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileEntry, Manifest } from '../format/types.js';
import type { ApplyInternals, ApplyPatchOptions } from './apply.js';
import { BaseReader } from './apply-base.js';
import { DataRecords, type DataReader } from './apply-data.js';
import { dirMode, fileMode, foldersOf, syncPath } from './apply-target.js';
import { BASE_PART_NAME, DATA_PART_NAME, MANIFEST_PART_NAME } from './constants.js';
import { PatchCorruptError, PatchInputError, WrongBaseError } from './errors.js';
import type { FileDigest, HashPool } from './hash-pool.js';
import type { CodecPool } from '../codec/codec-pool.js';
import { JobOp, type ApplyJobFailure, type JobStep } from './apply-job.js';
import { ApplyJobBuilder } from './apply-job-builder.js';

/** Errors of a forced reflink that mean "not on this file system" (then files are copied). */
const CLONE_UNSUPPORTED = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS', 'ENOTTY', 'EPERM', 'EBADF']);
/** Largest read of consecutive A chunks copied into B (a single larger chunk is read alone). */
const SPAN_BYTES = 8 << 20;
/** Bytes of B one job writes, at most (a single run or span may exceed it): bounds the memory of jobs in flight. */
const JOB_BYTES = 8 << 20;
/** Files per job, at most: many small files share a job (a job costs a round trip to a thread). */
const JOB_FILES = 256;
/** Files up to this size are written by one job (which then checks their whole hash); larger ones in pieces. */
const WHOLE_FILE_JOB_BYTES = 16 << 20;
/** Files of B created at once ahead of the jobs (libuv's thread pool runs four file system calls at a time). */
const CREATORS = 4;
/** Jobs sent and not finished, at most (two per codec thread keep both busy). */
const MAX_JOBS_IN_FLIGHT = 4;

/**
 * Creates B's folders (sorted, parents first), each as soon as its parent exists, many at a time: creating a
 * folder is a journaled metadata operation that can take milliseconds on a busy disk.
 */
async function makeFolders(out: string, folders: string[]): Promise<void> {
  const made = new Map<string, Promise<unknown>>();
  for (const d of folders) {
    const cut = d.lastIndexOf('/');
    const parent = cut < 0 ? undefined : made.get(d.slice(0, cut));
    made.set(d, (parent ?? Promise.resolve()).then(() => mkdir(join(out, d), { recursive: true })));
  }
  const settled = await Promise.allSettled(made.values());
  for (const r of settled) if (r.status === 'rejected') throw r.reason;
}

/** The typed error for a job's failure. */
function jobError(f: ApplyJobFailure): Error {
  switch (f.kind) {
    case 'wrongBase':
      return new WrongBaseError(f.path, f.detail);
    case 'corrupt':
      return new PatchCorruptError(f.part === 'data' ? DATA_PART_NAME : MANIFEST_PART_NAME, f.detail, f.offset);
    case 'input':
      return new PatchInputError(f.detail);
    case 'fs':
      return Object.assign(new Error(f.message), { code: f.code });
  }
}

const hex = (h: Uint8Array) => Buffer.from(h.buffer, h.byteOffset, h.byteLength).toString('hex');

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
  /** The job being planned, the B files whose every step is in it, and the jobs sent and not yet finished. */
  private job = new ApplyJobBuilder();
  private jobFiles = new Set<number>();
  private readonly inFlight: Array<Promise<void>> = [];
  private stopCreating = false;
  /** Errors that are a job's failure (told apart from the planner's own). */
  private readonly jobFailures = new WeakSet<object>();
  private readonly jobBytes: number;
  private records!: DataRecords;
  private done = 0;
  private readonly total: number;

  constructor(
    private readonly a: Manifest,
    private readonly b: Manifest,
    private readonly opts: ApplyPatchOptions,
    private readonly internals: ApplyInternals,
    private readonly pool: HashPool,
    private readonly codec: CodecPool,
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
    this.jobBytes = internals.jobBytes ?? JOB_BYTES;
  }

  async run(reader: DataReader): Promise<void> {
    this.records = new DataRecords(reader, this.b, this.base);
    await reader.header();
    const out = this.opts.outDir;
    // Validated: no entry of B is a link or file above another, and links are created last, so no
    // folder is ever made through a link.
    await makeFolders(out, foldersOf(this.b));
    await this.writeFiles();
    await this.records.checkAllUsed();
    // Links, then directory modes (a read-only directory would refuse its own content), each batch at once:
    // one at a time, metadata calls wait on the disk's journal in turn.
    await Promise.all(
      this.b.files.map(async (f) => {
        if (f.type === 'hardlink') await link(join(out, f.linkTarget), join(out, f.path));
        else if (f.type === 'symlink') await symlink(f.linkTarget, join(out, f.path));
      }),
    );
    await Promise.all(this.b.files.map(async (f) => (f.type === 'dir' ? chmod(join(out, f.path), dirMode(f.mode)) : undefined)));
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
    const results = await Promise.allSettled([...copiers, this.writeAssembled(assembled)]);
    const checks = await Promise.allSettled(this.verifications);
    for (const r of [...results, ...checks]) if (r.status === 'rejected') throw r.reason;
  }

  private progress(n: number): void {
    this.done += n;
    this.opts.onProgress?.({ phase: 'write', doneBytes: this.done, totalBytes: this.total });
  }

  /**
   * Assembles the files of B that are not whole copies, in the data part's order: the main thread reads the
   * records, checks them against B's manifest and plans jobs; codec workers read A, decode, check every chunk
   * and whole file, and write. A few jobs are in flight at once (bounded memory); the first failure, in job
   * order, is the one thrown.
   */
  private async writeAssembled(files: Array<[number, FileEntry]>): Promise<void> {
    const split: FileEntry[] = [];
    const creating = this.createFiles(files);
    try {
      for (const [fi, f] of files) {
        if (f.sizeBytes > (this.internals.wholeFileJobBytes ?? WHOLE_FILE_JOB_BYTES)) {
          split.push(f);
          await this.planFile(fi, f, true);
        } else {
          if (this.job.rawBytes + f.sizeBytes > this.jobBytes || this.job.fileCount >= JOB_FILES) await this.send();
          await this.planFile(fi, f, false);
        }
      }
      await this.send();
      while (this.inFlight.length > 0) await this.inFlight.shift();
    } catch (err) {
      // Jobs are awaited oldest first, so a job's failure caught here is the earliest one; a failure of the
      // planning concerns bytes after every job sent, so a failure of a job still in flight comes first.
      const settled = await Promise.allSettled(this.inFlight.splice(0));
      if (!this.jobFailures.has(err as object)) for (const r of settled) if (r.status === 'rejected') throw r.reason;
      throw err;
    } finally {
      this.stopCreating = true;
      await creating;
    }
    // Files too large for one job were written in pieces: check each whole once all its pieces are written.
    for (const f of split) this.background(this.finishSplit(f));
  }

  /**
   * Creates the (empty) files the jobs will write, in the order they are planned, several at a time, ahead of
   * the jobs: creating a file is a journaled metadata operation that can take milliseconds on a busy disk, and
   * the workers would otherwise wait for each. Creating is idempotent here and in the jobs (O_CREAT, never
   * O_TRUNC), so a job that gets to its file first simply creates it itself; failures are left to the job.
   */
  private async createFiles(files: Array<[number, FileEntry]>): Promise<void> {
    let next = 0;
    const creator = async () => {
      while (next < files.length && !this.stopCreating) {
        const [, f] = files[next++];
        await open(join(this.opts.outDir, f.path), fsConstants.O_WRONLY | fsConstants.O_CREAT, 0o600).then(
          (fh) => fh.close(),
          () => undefined,
        );
      }
    };
    await Promise.all(Array.from({ length: CREATORS }, creator));
  }

  /** Plans the steps of file fi into jobs (one job, or pieces of up to JOB_BYTES when `split`). */
  private async planFile(fi: number, f: FileEntry, split: boolean): Promise<void> {
    const outPath = join(this.opts.outDir, f.path);
    const head = { path: outPath, name: f.path, size: f.sizeBytes, sha256: hex(f.sha256), mode: fileMode(f.mode), durable: this.internals.durable === true };
    if (split) await this.send();
    const piece = () => this.job.file({ ...head, whole: !split });
    piece();
    this.jobFiles.add(fi);
    let off = 0;
    let k = 0;
    while (k < f.chunks.length) {
      if (split && this.job.rawBytes >= this.jobBytes) {
        await this.send();
        piece();
      }
      const ci = f.chunks[k];
      let n: number;
      if (this.aOfB[ci] >= 0) n = this.planCopy(f, k, off);
      else if (this.bLoc[ci]) n = this.planReuse(f, k, off);
      else n = await this.planRun(fi, f, k, off);
      for (let j = k; j < k + n; j++) off += this.b.chunks[f.chunks[j]].rawSizeBytes;
      k += n;
    }
  }

  /** Chunks of A lying one after another in the same A file (bounded read size), copied as they are. */
  private planCopy(f: FileEntry, k: number, off: number): number {
    const ai = this.aOfB[f.chunks[k]];
    const loc = this.aLoc[ai];
    if (!loc) throw new PatchCorruptError(BASE_PART_NAME, `chunk of ${f.path} is in no file of the base`);
    let n = 1;
    let end = loc.offset + this.a.chunks[ai].rawSizeBytes;
    while (k + n < f.chunks.length) {
      const nai = this.aOfB[f.chunks[k + n]];
      const nl = nai < 0 ? undefined : this.aLoc[nai];
      if (!nl || nl.file !== loc.file || nl.offset !== end || end - loc.offset + this.a.chunks[nai].rawSizeBytes > SPAN_BYTES) break;
      end += this.a.chunks[nai].rawSizeBytes;
      n++;
    }
    const af = this.a.files[loc.file];
    const chunk = this.job.chunks(f.chunks.slice(k, k + n).map((ci) => this.b.chunks[ci]));
    const from = this.job.span(this.job.path(join(this.opts.fromDir, af.path), af.path), loc.offset, chunk, n);
    this.job.step({ op: JobOp.Copy, at: off, chunk, count: n, from, ordinal: k }, end - loc.offset);
    return n;
  }

  /** A chunk of B written earlier (in B's order): read back from where it was written, and checked. */
  private planReuse(f: FileEntry, k: number, off: number): number {
    const ci = f.chunks[k];
    const prev = this.bLoc[ci]!;
    // Written by a job already sent (not this one, nor an earlier part of it): this job waits for those.
    if (!this.jobFiles.has(prev.file)) this.job.waitFor.push(...this.inFlight);
    const bf = this.b.files[prev.file];
    const chunk = this.job.chunks([this.b.chunks[ci]]);
    const from = this.job.span(this.job.path(join(this.opts.outDir, bf.path), bf.path), prev.offset, chunk, 1);
    this.job.step({ op: JobOp.Reuse, at: off, chunk, count: 1, from, ordinal: k }, this.b.chunks[ci].rawSizeBytes);
    return 1;
  }

  /** The data part's next run, which must be file fi's at chunk k: checked here, decoded by the job. */
  private async planRun(fi: number, f: FileEntry, k: number, off: number): Promise<number> {
    const rec = await this.records.peek();
    if (!rec || rec.run.bFile !== fi || rec.run.ordinal !== k) {
      throw new PatchCorruptError(DATA_PART_NAME, `expected the run of ${f.path} chunk ${k}`, rec?.offset ?? this.records.pos);
    }
    this.records.take();
    const { run, offset } = rec;
    const prep = this.records.prepareRun(run, rec.payload, offset, f, k);
    const chunk = this.job.chunks(f.chunks.slice(k, k + run.count).map((ci) => this.b.chunks[ci]));
    const step: JobStep = { op: JobOp.Bytes, at: off, chunk, count: run.count, record: offset, ordinal: k };
    if ('bytes' in prep) {
      step.start = this.job.payload(prep.bytes);
      step.length = prep.bytes.length;
    } else {
      step.op = prep.refs ? JobOp.ZstdDelta : JobOp.Zstd;
      step.start = this.job.payload(prep.frame);
      step.length = prep.frame.length;
      step.refs = prep.refs?.map((r) => {
        const af = this.a.files[r.aFile];
        return this.job.span(this.job.path(join(this.opts.fromDir, af.path), af.path), r.offset, this.job.chunks(r.chunks.map((ci) => this.a.chunks[ci])), r.chunks.length);
      });
    }
    this.job.step(step, run.rawSize);
    let p = 0;
    for (let j = 0; j < run.count; j++) {
      const bci = f.chunks[k + j];
      if (!this.bLoc[bci]) this.bLoc[bci] = { file: fi, offset: off + p };
      p += this.b.chunks[bci].rawSizeBytes;
    }
    return run.count;
  }

  /** Sends the job being planned (if any) to a codec worker; waits while too many are in flight. */
  private async send(): Promise<void> {
    const builder = this.job;
    this.job = new ApplyJobBuilder();
    this.jobFiles = new Set();
    if (builder.empty) return;
    const total = builder.rawBytes;
    const job = builder.build();
    const p = (async () => {
      // Earlier jobs whose output this one reads (waited for, whatever their outcome: theirs is reported first).
      await Promise.allSettled(builder.waitFor);
      const r = await this.codec.applyPatchJob(job);
      if (r.failure) {
        const e = jobError(r.failure);
        this.jobFailures.add(e);
        throw e;
      }
      this.copiedBytes += r.copied;
      this.patchedBytes += r.patched;
      this.progress(total);
    })();
    p.catch(() => undefined);
    this.inFlight.push(p);
    while (this.inFlight.length > MAX_JOBS_IN_FLIGHT) await this.inFlight.shift();
  }

  /** A file written in pieces: mode, whole-file check on the hash pool, fsync when asked. */
  private async finishSplit(f: FileEntry): Promise<void> {
    const outPath = join(this.opts.outDir, f.path);
    await chmod(outPath, fileMode(f.mode));
    const d = await this.pool.hashFile(outPath);
    if (d.size !== f.sizeBytes || d.sha256 !== hex(f.sha256)) throw new PatchCorruptError(MANIFEST_PART_NAME, `file ${f.path} does not match its hash`);
    if (this.internals.durable) await syncPath(outPath);
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
