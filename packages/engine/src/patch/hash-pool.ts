// Whole-file SHA-256 on worker threads, so verifying B's files runs beside the main thread's
// reads and writes (the applier's main cost after I/O). The worker reads the file itself.

import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buf = Buffer.allocUnsafe(1 << 20);
parentPort.on('message', ({ id, path }) => {
  try {
    const fd = openSync(path, 'r');
    const h = createHash('sha256');
    let size = 0;
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, size);
        if (n === 0) break;
        h.update(buf.subarray(0, n));
        size += n;
      }
    } finally {
      closeSync(fd);
    }
    parentPort.postMessage({ id, sha256: h.digest('hex'), size });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
});
`;

export interface FileDigest {
  sha256: string;
  size: number;
}

/** A fixed set of hashing threads; `close()` must be called (threads keep the process alive). */
export class HashPool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: (d: FileDigest) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private turn = 0;

  constructor(threads: number) {
    for (let i = 0; i < Math.max(1, threads); i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.on('message', (m: { id: number; sha256?: string; size?: number; error?: string }) => {
        const p = this.waiting.get(m.id);
        if (!p) return;
        this.waiting.delete(m.id);
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve({ sha256: m.sha256!, size: m.size! });
      });
      w.on('error', (err) => {
        for (const p of this.waiting.values()) p.reject(err);
        this.waiting.clear();
      });
      this.workers.push(w);
    }
  }

  /** SHA-256 and size of the file at `path` as it is on disk now. */
  hashFile(path: string): Promise<FileDigest> {
    const id = this.nextId++;
    const w = this.workers[this.turn++ % this.workers.length];
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      w.postMessage({ id, path });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
