// One hashing job of HashPool: SHA-256 and size of a whole file, optionally copying what it reads to a second
// file. Runs on a piscina worker (loaded through hash-worker-entry.cjs), or on the calling thread when only the
// TypeScript sources exist. Synchronous I/O on purpose: on a worker it holds none of libuv's few threadpool
// threads for the length of a large copy (the main thread's reads and writes need them).
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

export interface HashRequest {
  path: string;
  copyTo?: string;
}

/** A failure travels as data: an Error crossing threads would lose its `code`. */
export type HashAnswer = { sha256: string; size: number } | { error: string; code?: string };

/** One read buffer per thread, reused by every job of that thread (made on first use). */
let readBuf: Buffer | undefined;

export default function hashJob({ path, copyTo }: HashRequest): HashAnswer {
  const buf = (readBuf ??= Buffer.allocUnsafe(1 << 20));
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
    return { sha256: h.digest('hex'), size };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { error: String((e && e.message) || e), code: e && e.code };
  }
}
