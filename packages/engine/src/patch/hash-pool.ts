// Whole-file SHA-256 on worker threads, so verifying B's files runs beside the main thread's
// reads and writes (the applier's main cost after I/O). The worker reads the file itself, and can
// write what it reads to a second file: a verified copy in one pass, without holding one of libuv's
// few threadpool threads for the length of a large copy (the main thread's reads and writes need them).

import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { openSync, readSync, writeSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buf = Buffer.allocUnsafe(1 << 20);
parentPort.on('message', ({ id, path, copyTo }) => {
  try {
    const fd = openSync(path, 'r');
    let out = -1;
    const h = createHash('sha256');
    let size = 0;
    try {
      if (copyTo !== undefined) out = openSync(copyTo, 'w');
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, size);
        if (n === 0) break;
        h.update(buf.subarray(0, n));
        if (out >= 0) for (let w = 0; w < n; ) w += writeSync(out, buf, w, n - w, size + w);
        size += n;
      }
    } finally {
      closeSync(fd);
      if (out >= 0) closeSync(out);
    }
    parentPort.postMessage({ id, sha256: h.digest('hex'), size });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err), code: err && err.code });
  }
});
`;

export interface FileDigest {
  sha256: string;
  size: number;
}

interface Slot {
  worker: Worker;
  busy: number;
  /** Set when the thread died: its waiting requests were rejected, new ones are refused. */
  dead?: Error;
}

/** A fixed set of hashing threads; `close()` must be called (threads keep the process alive). */
export class HashPool {
  private readonly slots: Slot[] = [];
  private readonly waiting = new Map<number, { slot: Slot; resolve: (d: FileDigest) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  constructor(threads: number) {
    for (let i = 0; i < Math.max(1, threads); i++) {
      const slot: Slot = { worker: new Worker(WORKER_SOURCE, { eval: true }), busy: 0 };
      slot.worker.on('message', (m: { id: number; sha256?: string; size?: number; error?: string; code?: string }) => {
        const p = this.waiting.get(m.id);
        if (!p) return;
        this.waiting.delete(m.id);
        p.slot.busy--;
        if (m.error !== undefined) p.reject(Object.assign(new Error(m.error), { code: m.code }));
        else p.resolve({ sha256: m.sha256!, size: m.size! });
      });
      const fail = (err: Error) => {
        slot.dead ??= err;
        for (const [id, p] of this.waiting) {
          if (p.slot !== slot) continue;
          this.waiting.delete(id);
          p.reject(slot.dead);
        }
      };
      slot.worker.on('error', fail);
      slot.worker.on('exit', (code) => fail(new Error(`hashing thread exited (code ${code})`)));
      this.slots.push(slot);
    }
  }

  /** SHA-256 and size of the file at `path` as it is on disk now. */
  hashFile(path: string): Promise<FileDigest> {
    return this.submit({ path });
  }

  /**
   * Copies `from` to `to` (created or truncated; mode left to the caller) and returns the SHA-256 and
   * size of exactly the bytes written. Errors carry the file system's `code`.
   */
  copyAndHash(from: string, to: string): Promise<FileDigest> {
    return this.submit({ path: from, copyTo: to });
  }

  private submit(msg: { path: string; copyTo?: string }): Promise<FileDigest> {
    const id = this.nextId++;
    // The least busy thread: a long copy must not hold up short checks queued behind it.
    const live = this.slots.filter((s) => !s.dead);
    if (live.length === 0) return Promise.reject(this.slots[0].dead!);
    const slot = live.reduce((best, s) => (s.busy < best.busy ? s : best));
    slot.busy++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { slot, resolve, reject });
      slot.worker.postMessage({ id, ...msg });
    });
  }

  /** Stops the threads; requests still waiting, and any made later, are rejected. */
  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
