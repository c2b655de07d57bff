// One piece of applyPatch's assembly, run on a codec worker (or, without workers, on the calling thread): the
// main thread reads the data part and plans, the worker does the per-file work: it reads A's bytes (copied spans,
// delta references), decodes the runs' zstd frames against their references and writes B with positional writes.
// Every byte is checked: a file written whole by the job is hashed as it is written and compared with B's
// manifest (on a mismatch its chunks are checked one by one to name the culprit: A's file or the data part);
// a piece of a larger file has each chunk checked before it is written.
// Errors are returned as plain descriptions (error classes do not cross threads); the caller rethrows them typed.

import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, fchmodSync, fsyncSync, fstatSync, lstatSync, openSync, readSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { sha256 } from '../codec/chunk-codec.js';

type Binding = typeof import('zstd-napi/binding.js');
const binding = createRequire(import.meta.url)('zstd-napi/binding.js') as Binding;

/** Op kinds (numbers: cheap to clone). */
export const enum JobOp {
  /** Bytes of A copied as they are (each chunk checked against B's chunk hash). */
  Copy = 0,
  /** Bytes carried in the job's buffer (raw runs, stream runs, earlier bytes of B read back). */
  Bytes = 1,
  /** A zstd frame in the job's buffer, decoded with no dictionary. */
  Zstd = 2,
  /** A zstd frame decoded against the concatenated reference spans of A. */
  ZstdDelta = 3,
  /** Bytes of B written earlier (by this job, or by one that finished before it was sent): read back and checked. */
  Reuse = 4,
}

/** Consecutive chunks of one A file, at a known offset; `hashes` are checked unless the op says otherwise. */
export interface JobSpan {
  /** Index into job.aPaths. */
  aFile: number;
  offset: number;
  /** First chunk in job.sizes / job.hashes, and how many. */
  chunk: number;
  count: number;
}

export interface JobStep {
  op: JobOp;
  /** Offset in the B file. */
  at: number;
  /** B's chunks this step writes: job.sizes / job.hashes from `chunk`, `count` of them. */
  chunk: number;
  count: number;
  /** Copy: where the bytes are in A (its hashes are B's chunks', so they are checked once). Reuse: where in B. */
  from?: JobSpan;
  /** Bytes / Zstd / ZstdDelta: the payload in job.buffer. */
  start?: number;
  length?: number;
  /** ZstdDelta: reference spans of A, each chunk checked against A's manifest. */
  refs?: JobSpan[];
  /** Offset of the data part's record (for error messages). */
  record?: number;
  /** Ordinal of the step's first chunk in its B file (for error messages). */
  ordinal: number;
}

export interface JobFile {
  /** Absolute path of the B file; relative `name` for messages. */
  path: string;
  name: string;
  steps: JobStep[];
  /** The job writes the whole file: it hashes it, sets its mode and maybe fsyncs it. */
  whole: boolean;
  /** Whole files: expected size, SHA-256 (hex), permission bits, fsync before close. */
  size: number;
  sha256: string;
  mode: number;
  durable: boolean;
}

export interface ApplyJob {
  kind: 'patch-apply';
  /** Payloads of Bytes / Zstd / ZstdDelta steps. Transferred to the worker. */
  buffer: ArrayBuffer;
  files: JobFile[];
  /** Absolute paths of the files read (A's; B's for Reuse steps), and their names relative to their folder (for errors). */
  aPaths: string[];
  aNames: string[];
  /** Raw size and SHA-256 of every chunk named by the steps (B's chunks, then A's reference chunks). */
  sizes: Float64Array;
  hashes: Uint8Array;
}

/** What went wrong, as the caller's error classes need it. */
export type ApplyJobFailure =
  | { kind: 'wrongBase'; path: string; detail: string }
  | { kind: 'corrupt'; part: 'data' | 'manifest'; detail: string; offset?: number }
  | { kind: 'input'; detail: string }
  | { kind: 'fs'; message: string; code?: string };

export interface ApplyJobResult {
  failure?: ApplyJobFailure;
  /** B bytes written by Copy steps, and by the other steps. */
  copied: number;
  patched: number;
}

/** Thrown inside the job to stop at the first problem. */
class Stop {
  constructor(readonly failure: ApplyJobFailure) {}
}

/** Per-thread buffers, grown once: reads of A, references and decoded runs (GC churn on large buffers is costly). */
let readBuf: Buffer = Buffer.allocUnsafe(0);
let refBuf: Buffer = Buffer.allocUnsafe(0);
let outBuf: Buffer = Buffer.allocUnsafe(0);
let dctx: InstanceType<Binding['DCtx']> | undefined;

function grown(buf: Buffer, n: number): Buffer {
  return buf.length >= n ? buf : Buffer.allocUnsafe(Math.max(n, 4 << 20, buf.length * 2));
}

function spanBytes(job: ApplyJob, chunk: number, count: number): number {
  let n = 0;
  for (let i = chunk; i < chunk + count; i++) n += job.sizes[i];
  return n;
}

function sameHash(job: ApplyJob, i: number, bytes: Uint8Array): boolean {
  return sha256(bytes).equals(job.hashes.subarray(32 * i, 32 * i + 32));
}

/** Open A files of one job; closed when the job ends (A's folder may be swapped between applies). */
class AFiles {
  private readonly fds = new Map<number, number>();
  constructor(private readonly job: ApplyJob) {}

  fd(i: number): number {
    const hit = this.fds.get(i);
    if (hit !== undefined) return hit;
    const name = this.job.aNames[i];
    let fd: number;
    try {
      if (!lstatSync(this.job.aPaths[i]).isFile()) throw new Stop({ kind: 'wrongBase', path: name, detail: 'not a regular file' });
      fd = openSync(this.job.aPaths[i], 'r');
    } catch (err) {
      if (err instanceof Stop) throw err;
      throw new Stop({ kind: 'wrongBase', path: name, detail: `cannot open (${(err as NodeJS.ErrnoException).code ?? 'error'})` });
    }
    this.fds.set(i, fd);
    return fd;
  }

  /** Reads a span of A into `into` at `pos`; `checkA`: compare each chunk with A's manifest (names A's file). */
  read(s: JobSpan, into: Buffer, pos: number, checkA: boolean): number {
    const size = spanBytes(this.job, s.chunk, s.count);
    const fd = this.fd(s.aFile);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, into, pos + got, size - got, s.offset + got);
      if (n === 0) break;
      got += n;
    }
    const name = this.job.aNames[s.aFile];
    if (got !== size) throw new Stop({ kind: 'wrongBase', path: name, detail: `shorter than expected (read ${got} of ${size} bytes at ${s.offset})` });
    if (checkA) {
      let p = pos;
      for (let c = s.chunk; c < s.chunk + s.count; c++) {
        if (!sameHash(this.job, c, into.subarray(p, p + this.job.sizes[c]))) {
          throw new Stop({ kind: 'wrongBase', path: name, detail: `bytes at offset ${s.offset + p - pos} differ` });
        }
        p += this.job.sizes[c];
      }
    }
    return size;
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

/** The B bytes of one step (a view of a per-thread buffer or of the job's buffer), not yet checked. */
/**
 * The B bytes of one step (a view of a per-thread buffer or of the job's buffer). `eager`: check the A chunks of
 * a delta reference as they are read; otherwise only when the frame fails (see failedStep).
 */
function stepBytes(job: ApplyJob, all: Uint8Array, s: JobStep, a: AFiles, eager: boolean): Uint8Array {
  const raw = spanBytes(job, s.chunk, s.count);
  if (s.op === JobOp.Copy || s.op === JobOp.Reuse) {
    readBuf = grown(readBuf, raw);
    try {
      a.read(s.from!, readBuf, 0, false);
    } catch (err) {
      if (s.op === JobOp.Reuse && err instanceof Stop) throw new Stop({ kind: 'input', detail: `output file ${job.aNames[s.from!.aFile]} changed while applying` });
      throw err;
    }
    return readBuf.subarray(0, raw);
  }
  const payload = all.subarray(s.start!, s.start! + s.length!);
  if (s.op === JobOp.Bytes) return payload;
  let dict: Buffer | undefined;
  if (s.op === JobOp.ZstdDelta) {
    const total = s.refs!.reduce((t, r) => t + spanBytes(job, r.chunk, r.count), 0);
    refBuf = grown(refBuf, total);
    let p = 0;
    for (const r of s.refs!) p += a.read(r, refBuf, p, eager);
    dict = refBuf.subarray(0, p);
  }
  outBuf = grown(outBuf, raw);
  const out = outBuf.subarray(0, raw);
  dctx ??= new binding.DCtx();
  let n: number;
  try {
    n = dict && dict.length > 0 ? dctx.decompressUsingDict(out, payload, dict) : dctx.decompress(out, payload);
  } catch (err) {
    // A failed frame may leave the context mid-frame: start the next one from a fresh context.
    dctx = undefined;
    checkRefs(job, s, a);
    throw new Stop({ kind: 'corrupt', part: 'data', detail: `zstd: ${(err as Error).message}`, offset: s.record });
  }
  if (n !== raw) {
    checkRefs(job, s, a);
    throw new Stop({ kind: 'corrupt', part: 'data', detail: `zstd: frame decodes to ${n} bytes, expected ${raw}`, offset: s.record });
  }
  return out;
}

/** Before blaming a delta frame: reads its reference again, checking A's chunks (a changed A file is named). */
function checkRefs(job: ApplyJob, s: JobStep, a: AFiles): void {
  if (s.op !== JobOp.ZstdDelta) return;
  const total = s.refs!.reduce((t, r) => t + spanBytes(job, r.chunk, r.count), 0);
  const buf = Buffer.allocUnsafe(total);
  let p = 0;
  for (const r of s.refs!) p += a.read(r, buf, p, true);
}

/** Checks each chunk of a step's bytes against B's manifest; names what was wrong. */
function checkStep(job: ApplyJob, f: JobFile, s: JobStep, bytes: Uint8Array, a: AFiles): void {
  let p = 0;
  for (let j = 0; j < s.count; j++) {
    const c = s.chunk + j;
    if (!sameHash(job, c, bytes.subarray(p, p + job.sizes[c]))) {
      checkRefs(job, s, a);
      if (s.op === JobOp.Reuse) throw new Stop({ kind: 'input', detail: `output file ${job.aNames[s.from!.aFile]} changed while applying` });
      if (s.op === JobOp.Copy) {
        const from = s.from!;
        throw new Stop({ kind: 'wrongBase', path: job.aNames[from.aFile], detail: `bytes at offset ${from.offset + p} differ` });
      }
      throw new Stop({ kind: 'corrupt', part: 'data', detail: `chunk ${s.ordinal + j} of ${f.name} does not match its hash`, offset: s.record });
    }
    p += job.sizes[c];
  }
}

function writeAll(fd: number, bytes: Uint8Array, at: number): void {
  let w = 0;
  while (w < bytes.length) w += writeSync(fd, bytes, w, bytes.length - w, at + w);
}

/**
 * Writes one file (or piece). A whole file is hashed as it is written and checked once against B's manifest:
 * one hashing pass over its bytes; only on a mismatch are its steps read back and checked chunk by chunk, to
 * name the culprit. A piece of a larger file has each chunk checked before it is written (the caller checks the
 * whole file once every piece is written).
 */
function runFile(job: ApplyJob, all: Uint8Array, f: JobFile, a: AFiles, result: ApplyJobResult): void {
  // Created here unless the caller's creators (see Applier.createFiles) got to it first. Never O_TRUNC: the
  // file is new (B's folder started empty), and ext4 flushes a file truncated to zero when it is closed.
  const fd = openSync(f.path, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    const h: Hash | undefined = f.whole ? createHash('sha256') : undefined;
    for (let i = 0; i < f.steps.length; i++) {
      const s = f.steps[i];
      const bytes = stepBytes(job, all, s, a, !f.whole);
      if (!f.whole) checkStep(job, f, s, bytes, a);
      else if (s.op === JobOp.Reuse) {
        // Bytes read back from B are always checked. When they are wrong, the earlier steps of this file (not
        // checked yet) may be why: a damaged run is named before "changed while applying".
        try {
          checkStep(job, f, s, bytes, a);
        } catch (err) {
          findCulprit(job, f, fd, a, i);
          throw err;
        }
      }
      writeAll(fd, bytes, s.at);
      h?.update(bytes);
      // Bytes of B repeated from earlier in B count as neither copied from A nor decoded from the patch.
      if (s.op === JobOp.Copy) result.copied += bytes.length;
      else if (s.op !== JobOp.Reuse) result.patched += bytes.length;
    }
    if (h) {
      // The bytes written, in file order, must be B's file (size and SHA-256 of the manifest).
      const size = fstatSync(fd).size;
      if (size !== f.size || h.digest('hex') !== f.sha256) {
        findCulprit(job, f, fd, a, f.steps.length);
        throw new Stop({ kind: 'corrupt', part: 'manifest', detail: `file ${f.name} does not match its hash` });
      }
      fchmodSync(fd, f.mode);
      if (f.durable) fsyncSync(fd);
    }
  } finally {
    closeSync(fd);
  }
}

/** After a mismatch: reads the first `steps` steps' bytes back from the file and checks them chunk by chunk. */
function findCulprit(job: ApplyJob, f: JobFile, fd: number, a: AFiles, steps: number): void {
  for (const s of f.steps.slice(0, steps)) {
    const bytes = Buffer.allocUnsafe(spanBytes(job, s.chunk, s.count));
    let got = 0;
    while (got < bytes.length) {
      const n = readSync(fd, bytes, got, bytes.length - got, s.at + got);
      if (n === 0) break;
      got += n;
    }
    checkStep(job, f, s, bytes.subarray(0, got), a);
  }
}

/** Runs every step of the job, stopping at the first problem (returned, not thrown). */
export function runApplyJob(job: ApplyJob): ApplyJobResult {
  const all = new Uint8Array(job.buffer);
  const a = new AFiles(job);
  const result: ApplyJobResult = { copied: 0, patched: 0 };
  try {
    for (const f of job.files) runFile(job, all, f, a, result);
  } catch (err) {
    if (err instanceof Stop) result.failure = err.failure;
    else {
      const e = err as NodeJS.ErrnoException;
      result.failure = { kind: 'fs', message: e.message, code: e.code };
    }
  } finally {
    a.close();
  }
  return result;
}
