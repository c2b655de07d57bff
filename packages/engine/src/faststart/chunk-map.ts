// Maps trace reads (path, offset, length) onto a manifest's chunks. Needs only the manifest (never payloads),
// so training and simulation stay cheap and memory-flat in build size.
import type { Manifest } from '../format/types.js';
import type { TraceRecord } from '../trace/trace-types.js';

interface FileChunks {
  chunks: readonly number[];
  /** starts[i] = raw offset of chunk i in the file; starts[n] = file size. */
  starts: Float64Array;
}

/** Why a record could not be placed: its path is not a regular file of the build, or it starts past the end. */
export type UnmappedReason = 'unknown-path' | 'beyond-end';

export class ChunkMap {
  private readonly files = new Map<string, FileChunks>();
  /** Per chunk: its rank in file order (first appearance in the manifest's file walk); unreferenced chunks last. */
  readonly fileOrderRank: Int32Array;
  /** Per chunk: stored (download) bytes. */
  readonly storedBytes: Float64Array;

  constructor(readonly manifest: Manifest) {
    const byPath = new Map(manifest.files.map((f) => [f.path, f]));
    const n = manifest.chunks.length;
    this.fileOrderRank = new Int32Array(n).fill(-1);
    this.storedBytes = new Float64Array(n);
    manifest.chunks.forEach((c, i) => (this.storedBytes[i] = c.storedSizeBytes));
    let rank = 0;
    for (const f of manifest.files) {
      const target = f.type === 'hardlink' ? byPath.get(f.linkTarget) : f;
      if (!target || target.type !== 'file') continue;
      const starts = new Float64Array(target.chunks.length + 1);
      let off = 0;
      target.chunks.forEach((ci, i) => {
        starts[i] = off;
        off += manifest.chunks[ci].rawSizeBytes;
        if (this.fileOrderRank[ci] < 0) this.fileOrderRank[ci] = rank++;
      });
      starts[target.chunks.length] = off;
      this.files.set(f.path, { chunks: target.chunks, starts });
    }
    for (let i = 0; i < n; i++) if (this.fileOrderRank[i] < 0) this.fileOrderRank[i] = rank++;
  }

  /** The chunks of `path` in file order (empty for unknown paths and non-files). */
  fileChunks(path: string): readonly number[] {
    return this.files.get(path)?.chunks ?? [];
  }

  /** The size of `path` in bytes (undefined for unknown paths and non-files). */
  fileSize(path: string): number | undefined {
    const f = this.files.get(path);
    return f ? f.starts[f.starts.length - 1] : undefined;
  }

  /** Every regular file (and hard link) path with its chunk list. */
  *allFiles(): Iterable<readonly number[]> {
    for (const f of this.files.values()) yield f.chunks;
  }

  /**
   * The chunks of the read's file that start at or after the read's end, in file order, up to `maxStoredBytes`
   * stored bytes (a chunk that would pass the cap ends the list). Empty for an unplaced read.
   */
  chunksAfter(r: TraceRecord, maxStoredBytes: number): number[] {
    const f = this.files.get(r.path);
    if (!f) return [];
    const end = r.offsetBytes + r.lengthBytes;
    let lo = 0;
    let hi = f.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (f.starts[mid] < end) lo = mid + 1;
      else hi = mid;
    }
    const out: number[] = [];
    let bytes = 0;
    for (let i = lo; i < f.chunks.length; i++) {
      const c = f.chunks[i];
      if (bytes + this.storedBytes[c] > maxStoredBytes) break;
      bytes += this.storedBytes[c];
      out.push(c);
    }
    return out;
  }

  /**
   * Calls `fn` for every chunk the read touches (in file order; a read past the end is clipped).
   * Returns null when placed, else the reason it was not.
   */
  forEachChunk(r: TraceRecord, fn: (chunk: number) => void): UnmappedReason | null {
    const f = this.files.get(r.path);
    if (!f) return 'unknown-path';
    const size = f.starts[f.starts.length - 1];
    if (r.offsetBytes >= size) return 'beyond-end';
    const end = Math.min(size, r.offsetBytes + r.lengthBytes);
    // Last chunk whose start ≤ offset.
    let lo = 0;
    let hi = f.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (f.starts[mid] <= r.offsetBytes) lo = mid;
      else hi = mid - 1;
    }
    for (let i = lo; i < f.chunks.length && f.starts[i] < end; i++) fn(f.chunks[i]);
    return null;
  }
}

/** One session's chunk accesses: every chunk it reads, once, in order of first access, with that time. */
export interface SessionAccess {
  chunks: Int32Array;
  firstMs: Float64Array;
  /** Every read in time order as (time, chunk list start, end) into `readChunks` (for simulation). */
  readTimes: Float64Array;
  readStart: Int32Array;
  readChunks: Int32Array;
  records: number;
  unknownPath: number;
  beyondEnd: number;
}

/** Maps one session's records (time order) onto chunks. */
export function sessionAccess(map: ChunkMap, records: readonly TraceRecord[], withReads = false): SessionAccess {
  const seen = new Set<number>();
  const chunks: number[] = [];
  const first: number[] = [];
  const readTimes: number[] = [];
  const readStart: number[] = [0];
  const readChunks: number[] = [];
  let unknownPath = 0;
  let beyondEnd = 0;
  for (const r of records) {
    const why = map.forEachChunk(r, (c) => {
      if (!seen.has(c)) {
        seen.add(c);
        chunks.push(c);
        first.push(r.tMs);
      }
      if (withReads) readChunks.push(c);
    });
    if (why === 'unknown-path') unknownPath++;
    else if (why === 'beyond-end') beyondEnd++;
    else if (withReads) {
      readTimes.push(r.tMs);
      readStart.push(readChunks.length);
    }
  }
  return {
    chunks: Int32Array.from(chunks),
    firstMs: Float64Array.from(first),
    readTimes: Float64Array.from(readTimes),
    readStart: Int32Array.from(readStart),
    readChunks: Int32Array.from(readChunks),
    records: records.length,
    unknownPath,
    beyondEnd,
  };
}
