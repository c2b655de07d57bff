// zstd coding of makePatch's runs on worker threads, so both cores compress while the main thread reads B's
// new chunks and picks their references. Each job is coded at a fast probe level first; only runs where a
// high level can still pay (compressible, and not already almost entirely matched by the reference) are
// coded again at the high level, and the smaller frame is kept.
// The worker is evaluated from source (like hash-pool.ts), so it runs the same way from dist/ and from the
// TypeScript sources under test.

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { zstdCompress } from './zstd.js';

/** Levels of one job (compressor-side choices: any level decodes the same way). */
export interface LevelPolicy {
  /** Level every run is coded at first. */
  probeLevel: number;
  /** Level a run is coded at again when the probe says it may pay (≤ probeLevel: never). */
  highLevel: number;
  /**
   * Re-code only when probe frame / (raw + reference) is at least this: the high level's cost grows with raw +
   * reference, its gain with the probe frame, so this is the expected gain per unit of time...
   */
  highMinGain: number;
  /** ...and probe frame / raw is at most this (above: incompressible, a high level gains nothing). */
  highMaxRatio: number;
}

export interface EncodeJob {
  raw: Uint8Array;
  /** Raw-content dictionary (reference bytes of A), empty for none. */
  dict: Uint8Array;
  windowLog: number;
  policy: LevelPolicy;
}

export interface EncodedRun {
  payload: Uint8Array;
  level: number;
}

// One compression context per thread, for every level: ZSTD_CCtx_reset between passes keeps its workspace,
// so the level-9 and level-19 passes share one set of match tables instead of holding one each, and it drops
// the run's reference (zstd's copy of it and the tables built from it) as soon as the pass is done. Runs come
// as views of a SharedArrayBuffer (nothing copied into the thread); frames go back transferred.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const binding = require(workerData.bindingPath);
const P = binding.CParameter;
const cctx = new binding.CCtx();
let scratch = new Uint8Array(0);
function compress(raw, dict, level, windowLog) {
  cctx.reset(binding.ResetDirective.parameters);
  cctx.setParameter(P.compressionLevel, level);
  cctx.setParameter(P.windowLog, windowLog);
  cctx.setParameter(P.checksumFlag, 0);
  cctx.setParameter(P.contentSizeFlag, 0);
  if (dict.length > 0) cctx.loadDictionary(dict);
  try {
    const bound = binding.compressBound(raw.length);
    if (scratch.length < bound) scratch = new Uint8Array(bound);
    return scratch.slice(0, cctx.compress2(scratch, raw));
  } finally {
    cctx.reset(binding.ResetDirective.parameters);
    // A rare large run must not pin its scratch buffer for the rest of the make.
    if (scratch.length > workerData.keepScratchBytes) scratch = new Uint8Array(0);
  }
}
parentPort.on('message', ({ id, raw, dict, windowLog, level }) => {
  try {
    const payload = compress(raw, dict, level, windowLog);
    parentPort.postMessage({ id, payload }, [payload.buffer]);
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

/**
 * Runs with at least this many bytes of run + reference are coded on thread 0 only. zstd keeps a context's
 * workspace at its largest size for many calls after a large input (level 19 with a few MiB: ~100 MiB of match
 * tables), so large runs spread over every thread left each one holding such tables: the make's peak memory.
 * They are rare (35 of 4,406 runs on a kernel pair, 1/6 of the zstd time).
 */
const BIG_JOB_BYTES = 2 << 20;

/** Scratch output a zstd thread keeps between runs (a default-size run's bound). */
const KEEP_SCRATCH_BYTES = 5 << 20;

/** Whether a run whose probe frame has `probeBytes` is worth coding again at the high level. */
function wantsHigh(job: EncodeJob, probeBytes: number): boolean {
  const { policy } = job;
  const gain = probeBytes / Math.max(1, job.raw.length + job.dict.length);
  const ratio = probeBytes / Math.max(1, job.raw.length);
  return policy.highLevel > policy.probeLevel && gain >= policy.highMinGain && ratio <= policy.highMaxRatio;
}

/** Codes a run by the job's policy with `compress(level)`: the probe, then the high level where it may pay; the smaller frame wins. */
async function encodeWith(job: EncodeJob, compress: (level: number) => Uint8Array | Promise<Uint8Array>): Promise<EncodedRun> {
  const { probeLevel, highLevel } = job.policy;
  const probe = await compress(probeLevel);
  if (!wantsHigh(job, probe.length)) return { payload: probe, level: probeLevel };
  const hi = await compress(highLevel);
  return hi.length < probe.length ? { payload: hi, level: highLevel } : { payload: probe, level: probeLevel };
}

/** The job with run and reference in shared memory (one copy, read by both passes without further copies). */
function shareJob(job: EncodeJob): EncodeJob {
  if (isShared(job.raw) && isShared(job.dict)) return job;
  const [raw, dict] = sharedViews(job.raw.length, job.dict.length);
  raw.set(job.raw);
  dict.set(job.dict);
  return { ...job, raw, dict };
}

function isShared(b: Uint8Array): boolean {
  return b.buffer instanceof SharedArrayBuffer;
}

/** Room for a run and its reference in one SharedArrayBuffer: [run, reference] views. */
export function sharedViews(rawBytes: number, dictBytes: number): [Uint8Array, Uint8Array] {
  const sab = new SharedArrayBuffer(rawBytes + dictBytes);
  return [new Uint8Array(sab, 0, rawBytes), new Uint8Array(sab, rawBytes, dictBytes)];
}

interface Pending {
  resolve: (payload: Uint8Array) => void;
  reject: (e: Error) => void;
}

/** A fixed set of zstd threads; `close()` must be called (threads keep the process alive). */
export class EncodePool {
  private readonly workers: Worker[] = [];
  private readonly busy: number[] = [];
  private readonly waiting = new Map<number, Pending & { slot: number }>();
  private nextId = 0;
  private dead: Error | undefined;

  constructor(threads: number) {
    const bindingPath = createRequire(import.meta.url).resolve('zstd-napi/binding.js');
    for (let i = 0; i < threads; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { bindingPath, keepScratchBytes: KEEP_SCRATCH_BYTES } });
      w.on('message', (m: { id: number; payload?: Uint8Array; error?: string }) => {
        const p = this.waiting.get(m.id);
        if (!p) return;
        this.waiting.delete(m.id);
        this.busy[p.slot]--;
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m.payload!);
      });
      const fail = (err: Error) => {
        this.dead ??= err;
        for (const [id, p] of this.waiting) {
          this.waiting.delete(id);
          p.reject(this.dead);
        }
      };
      w.on('error', fail);
      w.on('exit', (code) => fail(new Error(`zstd thread exited (code ${code})`)));
      this.workers.push(w);
      this.busy.push(0);
    }
  }

  get threads(): number {
    return this.workers.length;
  }

  /**
   * Codes one run: the probe, then a high-level pass when the probe says it pays, each on the least busy thread
   * (the high-level passes are most of the work: pinning them to one thread measured 2x slower, no less memory).
   */
  encode(job: EncodeJob): Promise<EncodedRun> {
    // No threads: on the calling thread.
    if (this.workers.length === 0) return encodeWith(job, (level) => zstdCompress(job.raw, { level, windowLog: job.windowLog }, job.dict));
    const shared = shareJob(job);
    const big = job.raw.length + job.dict.length >= BIG_JOB_BYTES;
    return encodeWith(job, (level) => this.compress(big ? 0 : this.leastBusy(), shared, level));
  }

  private leastBusy(): number {
    let slot = 0;
    for (let i = 1; i < this.busy.length; i++) if (this.busy[i] < this.busy[slot]) slot = i;
    return slot;
  }

  private compress(slot: number, job: EncodeJob, level: number): Promise<Uint8Array> {
    if (this.dead) return Promise.reject(this.dead);
    this.busy[slot]++;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, slot });
      this.workers[slot].postMessage({ id, raw: job.raw, dict: job.dict, windowLog: job.windowLog, level });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
