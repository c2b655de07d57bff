// A pool of worker threads that hash and compress chunk batches on all cores (piscina).
// The worker entry is the compiled `codec-worker-entry.cjs` beside this module (CommonJS on purpose: see that
// file). When this module runs from TypeScript sources (vitest) there is no such file; the pool then looks for
// the compiled twin under dist/, and if that is missing too it runs batches on the calling thread (same code,
// same results, no parallelism).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { decodeBatch, decodeBatchResult, encodeBatch, type CodecBatch, type CodecBatchResult, type DecodeBatch } from './codec-batch.js';
import { decodeAndWrite, type DecodeWriteJob } from './decode-write.js';
import { runApplyJob, type ApplyJob, type ApplyJobResult } from '../patch/apply-job.js';

export interface CodecPoolOptions {
  /** Worker threads; 0 runs everything on the calling thread. Default: available parallelism. */
  threads?: number;
  /**
   * Tasks handed to one thread at a time (default 1). With 2, a thread finds its next task already queued when it
   * finishes one, instead of idling for a round trip through the calling thread's event loop.
   */
  tasksPerThread?: number;
  /** Explicit worker module (file path or URL), mainly for tests. */
  workerFile?: string | URL;
}

/** Finds the compiled worker module, or undefined when only TypeScript sources are present. */
export function resolveCodecWorkerFile(): string | undefined {
  const here = fileURLToPath(import.meta.url);
  const sibling = here.replace(/codec-pool\.(ts|js)$/, 'codec-worker-entry.cjs');
  if (here.endsWith('.js') && existsSync(sibling)) return sibling;
  // Running from src/ (tests): use the build output if it exists.
  const inDist = sibling.replace(/([/\\])src([/\\])codec([/\\])codec-worker-entry\.cjs$/, '$1dist$2codec$3codec-worker-entry.cjs');
  if (inDist !== sibling && existsSync(inDist)) return inDist;
  return undefined;
}

/** Runs codec batches in parallel. Call `close()` when done (it is idempotent). */
export class CodecPool {
  readonly threads: number;
  private readonly piscina?: Piscina;

  constructor(opts: CodecPoolOptions = {}) {
    const wanted = opts.threads ?? availableParallelism();
    const file = wanted > 0 ? (opts.workerFile ?? resolveCodecWorkerFile()) : undefined;
    if (file !== undefined && wanted > 0) {
      const url = file instanceof URL ? file.href : pathToFileURL(file).href;
      this.piscina = new Piscina({ filename: url, minThreads: wanted, maxThreads: wanted, idleTimeout: 1000, concurrentTasksPerWorker: opts.tasksPerThread ?? 1 });
      this.threads = wanted;
    } else {
      this.threads = 0;
    }
  }

  /** Hashes and compresses one batch. The batch's buffer is transferred to the worker: do not reuse it. */
  async run(batch: CodecBatch): Promise<CodecBatchResult> {
    if (!this.piscina) return decodeBatchResult(encodeBatch(batch));
    const transferList = [batch.data.buffer as ArrayBuffer, batch.lengths.buffer as ArrayBuffer];
    const packed = (await this.piscina.run(batch, { transferList })) as Uint8Array;
    return decodeBatchResult(packed);
  }

  /**
   * Decodes and verifies stored payloads. Returns [u32 first bad index or DECODE_OK][raw bytes], decoded into
   * `batch.out` when it is large enough. The batch's buffers (data, out) are transferred to the worker: do not
   * reuse them.
   */
  async decode(batch: DecodeBatch): Promise<Uint8Array> {
    if (!this.piscina) return decodeBatch(batch);
    const transferList = [batch.data.buffer as ArrayBuffer];
    if (batch.out !== undefined) transferList.push(batch.out);
    return (await this.piscina.run(batch, { transferList })) as Uint8Array;
  }

  /**
   * Decodes, verifies and writes one read of a pack (see decodeAndWrite). Returns the job's buffer, its first u32
   * DECODE_OK or the index of the first bad chunk; the buffer is transferred to the worker and back: reuse only
   * the returned one. Errors: file system errors of the writes.
   */
  async decodeAndWrite(job: DecodeWriteJob): Promise<Uint8Array> {
    if (!this.piscina) return decodeAndWrite(job);
    return (await this.piscina.run(job, { transferList: [job.buffer] })) as Uint8Array;
  }

  /**
   * Runs one piece of a patch apply (see runApplyJob): reads of A, decoding, checks and writes. The job's buffer
   * is transferred to the worker. Failures are returned, not thrown.
   */
  async applyPatchJob(job: ApplyJob): Promise<ApplyJobResult> {
    if (!this.piscina) return runApplyJob(job);
    return (await this.piscina.run(job, { transferList: [job.buffer] })) as ApplyJobResult;
  }

  async close(): Promise<void> {
    if (this.piscina) await this.piscina.destroy();
  }
}
