// Whole-file SHA-256 of a build's files, off the thread that reads and chunks them (image builds).
// The builder hands over each batch of chunk bytes with who owns which bytes; the digester feeds them to one
// hash per open file and returns a file's digest when the builder says the file ended. One worker thread
// keeps the order of the bytes; with `threads: 0` the same work runs on the calling thread.

import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** Segments: [owner, byteLength] pairs back to back, in byte order. Ends: owners whose last byte came (in order). */
interface DigestBatch {
  bytes: Uint8Array;
  segments: Int32Array;
  ends: Int32Array;
}

interface DigestAnswer {
  owners: Int32Array;
  digests: Uint8Array;
}

/** The state both sides run: open hashes by owner; digests for the owners that ended in this batch. */
function digestBatch(open: Map<number, Hash>, b: DigestBatch, create: (alg: string) => Hash): DigestAnswer {
  let at = 0;
  for (let i = 0; i < b.segments.length; i += 2) {
    const owner = b.segments[i];
    const len = b.segments[i + 1];
    let h = open.get(owner);
    if (h === undefined) {
      h = create('sha256');
      open.set(owner, h);
    }
    h.update(b.bytes.subarray(at, at + len));
    at += len;
  }
  const digests = new Uint8Array(32 * b.ends.length);
  for (let i = 0; i < b.ends.length; i++) {
    const owner = b.ends[i];
    const h = open.get(owner) ?? create('sha256');
    open.delete(owner);
    digests.set(h.digest(), 32 * i);
  }
  return { owners: b.ends, digests };
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const open = new Map();
const digestBatch = ${digestBatch.toString()};
parentPort.on('message', (b) => {
  if (b === 'close') {
    parentPort.close();
    return;
  }
  try {
    const r = digestBatch(open, b, createHash);
    parentPort.postMessage(r, [r.digests.buffer]);
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err) });
  }
});
`;

/** Batches the worker may hold before `add` waits (bounds the copies in flight). */
const MAX_QUEUED = 6;

export class FileDigester {
  private readonly worker?: Worker;
  private readonly open = new Map<number, Hash>();
  /** One entry per batch in the worker, oldest first (answers come back in order). */
  private readonly waiting: Array<{ done: Promise<void>; resolve: () => void; reject: (e: Error) => void }> = [];
  private failed?: Error;
  private exited = false;
  private readonly onDigest: (owner: number, digest: Uint8Array) => void;

  /** `onDigest` receives each file's digest once its end was passed to `add`. */
  constructor(threads: number, onDigest: (owner: number, digest: Uint8Array) => void) {
    this.onDigest = onDigest;
    if (threads <= 0) return;
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.on('message', (m: DigestAnswer | { error: string }) => {
      const w = this.waiting.shift();
      if ('error' in m) {
        this.fail(new Error(`file digest thread: ${m.error}`));
        return;
      }
      this.deliver(m);
      w?.resolve();
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      this.exited = true;
      this.fail(new Error(`file digest thread exited (code ${code})`));
    });
  }

  /**
   * Hashes `bytes` (copied before this returns, so the caller may reuse or transfer its buffer at once):
   * `segments` says whose bytes they are, `ends` which files are complete after them.
   */
  async add(bytes: Uint8Array, segments: readonly number[], ends: readonly number[]): Promise<void> {
    if (this.failed) throw this.failed;
    const batch: DigestBatch = { bytes, segments: Int32Array.from(segments), ends: Int32Array.from(ends) };
    if (!this.worker) {
      this.deliver(digestBatch(this.open, batch, createHash));
      return;
    }
    const copy = bytes.slice();
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    done.catch(() => undefined);
    this.waiting.push({ done, resolve, reject });
    this.worker.postMessage({ ...batch, bytes: copy }, [copy.buffer, batch.segments.buffer as ArrayBuffer, batch.ends.buffer as ArrayBuffer]);
    if (this.waiting.length > MAX_QUEUED) await this.waiting[0].done;
  }

  /** Waits until every digest asked for so far was delivered. */
  async drain(): Promise<void> {
    const last = this.waiting[this.waiting.length - 1];
    if (last) await last.done;
    if (this.failed) throw this.failed;
  }

  /** Stops the thread; digests still owed are failed, and so is any later call. */
  async close(): Promise<void> {
    if (this.worker && !this.exited) {
      // Let the thread leave by itself (no native hashing cut off); terminate only if it does not.
      const w = this.worker;
      w.removeAllListeners('exit');
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      w.postMessage('close');
      const timer = setTimeout(() => void w.terminate(), 2000);
      await exited;
      clearTimeout(timer);
    }
    this.fail(new Error('file digester closed'));
  }

  private deliver(a: DigestAnswer): void {
    for (let i = 0; i < a.owners.length; i++) this.onDigest(a.owners[i], a.digests.subarray(32 * i, 32 * i + 32));
  }

  private fail(err: Error): void {
    this.failed ??= err;
    for (const w of this.waiting.splice(0)) w.reject(this.failed);
  }
}
