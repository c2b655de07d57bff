// Whole-file SHA-256 on worker threads (piscina), so verifying B's files runs beside the main thread's
// reads and writes (the applier's main cost after I/O). The worker reads the file itself, and can
// write what it reads to a second file: a verified copy in one pass (see hash-worker.ts).
// The worker entry is the compiled `hash-worker-entry.cjs` (CommonJS on purpose, as for the codec pool); when
// only TypeScript sources exist (and no dist/ twin), jobs run on the calling thread: same code, same results.

import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { resolveWorkerEntry } from '../codec/worker-file.js';
import hashJob, { type HashAnswer, type HashRequest } from './hash-worker.js';

export interface FileDigest {
  sha256: string;
  size: number;
}

/** Finds the compiled worker entry, or undefined when only TypeScript sources are present. */
export function resolveHashWorkerFile(): string | undefined {
  return resolveWorkerEntry(import.meta.url, 'hash-worker-entry.cjs');
}

/** A fixed set of hashing threads; `close()` must be called (threads keep the process alive). */
export class HashPool {
  private readonly piscina?: Piscina;
  private closed = false;

  constructor(threads: number) {
    const file = resolveHashWorkerFile();
    if (file !== undefined) {
      const n = Math.max(1, threads);
      // One job per thread at a time, the others queue: a long copy never holds up a short check that a free
      // thread could take.
      this.piscina = new Piscina({ filename: pathToFileURL(file).href, minThreads: n, maxThreads: n, idleTimeout: 1000 });
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

  /** Stops the threads; requests still waiting, and any made later, are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.piscina) await this.piscina.destroy();
  }

  private async submit(req: HashRequest): Promise<FileDigest> {
    if (this.closed) throw new Error('hashing threads exited (the pool is closed)');
    const m = this.piscina ? ((await this.piscina.run(req)) as HashAnswer) : hashJob(req);
    if ('error' in m) throw Object.assign(new Error(m.error), { code: m.code });
    return m;
  }
}
