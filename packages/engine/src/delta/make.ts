// Client side of a delta push: chunk a build (the entries the tar writer would archive) with the image
// builder's FastCDC parameters, then write a delta file that references the chunks the server already
// has and carries the others as literals. Two passes over the build, but the second reads only the
// literal chunks (by offset) and never hashes anything the first pass hashed beyond those.
import { createHash } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { FastCdcChunker, validateChunkingParams } from '../chunker/fastcdc.js';
import { ChunkCompressor, compressBound } from '../codec/chunk-codec.js';
import { DEFAULT_CHUNKING } from '../format/constants.js';
import type { ChunkingParams } from '../format/types.js';
import { tarSize, type TarWriteEntry } from '../tar/tar-writer.js';
import {
  DELTA_FORMAT_VERSION, DELTA_HEADER_BYTES, DELTA_MAGIC, DELTA_ZSTD_LEVEL, ENTRY_DIR, ENTRY_FILE, ENTRY_SYMLINK, REC_ENTRY, REC_LITERAL,
  REC_REF, REC_TRAILER, SCAN_READ_BYTES,
} from './constants.js';

/** One file's chunks, in file order: SHA-256 (32 bytes each, back to back) and raw lengths. */
export interface ScannedFile {
  hashes: Uint8Array;
  lengths: number[];
}

/** The result of the chunk scan: the entries and, per regular file (same index), its chunks. */
export interface DeltaPlan {
  chunking: ChunkingParams;
  entries: readonly TarWriteEntry[];
  files: Array<ScannedFile | null>;
  /** Exact size of the tar the delta stands for (`tarSize(entries)`). */
  tarSizeBytes: number;
  /** Sum of the regular files' sizes. */
  contentBytes: number;
  /** Chunk references over all files. */
  chunkCount: number;
}

export interface ScanOptions {
  /** Defaults to the image builder's (DEFAULT_CHUNKING): the ids must match those in the server's manifests. */
  chunking?: ChunkingParams;
  /** Called with the content bytes scanned so far. */
  onProgress?: (scannedBytes: number) => void;
}

/**
 * Reads every regular file of `entries` once, cutting it with FastCDC and hashing each chunk.
 * Errors: the file system's (a file that vanished), Error when a file's size differs from its listing.
 */
export async function scanBuild(entries: readonly TarWriteEntry[], opts: ScanOptions = {}): Promise<DeltaPlan> {
  const chunking = opts.chunking ?? { ...DEFAULT_CHUNKING };
  validateChunkingParams(chunking);
  const chunker = new FastCdcChunker(chunking);
  const buf = Buffer.allocUnsafe(SCAN_READ_BYTES);
  const cuts: number[] = [];
  const files: Array<ScannedFile | null> = [];
  let scanned = 0;
  let chunkCount = 0;
  for (const e of entries) {
    if (e.type !== 'file') {
      files.push(null);
      continue;
    }
    const hashes: Buffer[] = [];
    const lengths: number[] = [];
    let h = createHash('sha256');
    let open1 = 0;
    const fh = await open(e.source, 'r');
    try {
      let pos = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        if (pos > e.size) break;
        const view = buf.subarray(0, bytesRead);
        cuts.length = 0;
        chunker.update(view, cuts);
        let start = 0;
        for (const cut of cuts) {
          h.update(view.subarray(start, cut));
          hashes.push(h.digest());
          lengths.push(open1 + cut - start);
          h = createHash('sha256');
          open1 = 0;
          start = cut;
        }
        h.update(view.subarray(start));
        open1 += bytesRead - start;
        scanned += bytesRead;
        opts.onProgress?.(scanned);
      }
      if (pos !== e.size) throw new Error(`${e.source} changed size since it was listed (${e.size} -> ${pos} bytes)`);
    } finally {
      await fh.close();
    }
    if (chunker.finish() > 0) {
      hashes.push(h.digest());
      lengths.push(open1);
    }
    chunkCount += lengths.length;
    files.push({ hashes: Buffer.concat(hashes), lengths });
  }
  const contentBytes = entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
  return { chunking, entries, files, tarSizeBytes: tarSize(entries), contentBytes, chunkCount };
}

/** Distinct chunk ids (hex) of a plan, in first-occurrence order: what to ask the server about. */
export function planChunkIds(plan: DeltaPlan): string[] {
  const seen = new Set<string>();
  for (const f of plan.files) {
    if (!f) continue;
    for (let i = 0; i < f.lengths.length; i++) seen.add(Buffer.from(f.hashes.buffer, f.hashes.byteOffset + 32 * i, 32).toString('hex'));
  }
  return [...seen];
}

export interface WriteDeltaResult {
  /** Size of the delta file. */
  sizeBytes: number;
  refChunks: number;
  literalChunks: number;
  /** Raw bytes of the literal chunks (what the server did not have). */
  literalRawBytes: number;
  tarSizeBytes: number;
}

/** Buffered, hashed sequential writer of the delta file. */
class DeltaSink {
  private readonly hash = createHash('sha256');
  private buf = Buffer.allocUnsafe(1024 * 1024);
  private len = 0;
  written = 0;
  constructor(private readonly fh: FileHandle) {}

  async put(b: Uint8Array): Promise<void> {
    this.hash.update(b);
    if (this.len + b.length > this.buf.length) await this.flush();
    if (b.length > this.buf.length) {
      await this.fh.write(b);
    } else {
      this.buf.set(b, this.len);
      this.len += b.length;
    }
    this.written += b.length;
  }

  async flush(): Promise<void> {
    if (this.len > 0) await this.fh.write(this.buf.subarray(0, this.len));
    this.len = 0;
  }

  digest(): Buffer {
    return this.hash.digest();
  }
}

function header(plan: DeltaPlan): Buffer {
  const b = Buffer.alloc(DELTA_HEADER_BYTES);
  b.set(DELTA_MAGIC, 0);
  b.writeUInt16LE(DELTA_FORMAT_VERSION, 4);
  b.writeUInt16LE(0, 6);
  b.writeUInt32LE(plan.chunking.minSizeBytes, 8);
  b.writeUInt32LE(plan.chunking.avgSizeBytes, 12);
  b.writeUInt32LE(plan.chunking.maxSizeBytes, 16);
  b.writeUInt8(1, 20); // literal codec family: per-chunk zstd or raw (codec byte per literal)
  b.writeBigUInt64LE(BigInt(plan.tarSizeBytes), 24);
  return b;
}

/** The entry record of `e` (format in constants.ts). */
export function encodeEntryRecord(e: TarWriteEntry): Buffer {
  const name = Buffer.from(e.name, 'utf8');
  const link = Buffer.from(e.type === 'symlink' ? (e.linkname ?? '') : '', 'utf8');
  if (name.length > 0xffff || link.length > 0xffff) throw new RangeError(`path too long for a delta: ${e.name.slice(0, 200)}`);
  const b = Buffer.allocUnsafe(1 + 1 + 4 + 8 + 8 + 2 + 2 + name.length + link.length);
  let p = b.writeUInt8(REC_ENTRY, 0);
  p = b.writeUInt8(e.type === 'file' ? ENTRY_FILE : e.type === 'directory' ? ENTRY_DIR : ENTRY_SYMLINK, p);
  p = b.writeUInt32LE(e.mode & 0o7777, p);
  p = b.writeBigUInt64LE(BigInt(e.mtime), p);
  p = b.writeBigUInt64LE(BigInt(e.type === 'file' ? e.size : 0), p);
  p = b.writeUInt16LE(name.length, p);
  p = b.writeUInt16LE(link.length, p);
  b.set(name, p);
  b.set(link, p + name.length);
  return b;
}

/**
 * Writes the delta file of `plan` to `outPath` (through a temporary file, renamed at the end): chunks
 * whose id (hex) is in `known` become references, the others literals read back from the files by
 * offset and checked against the scan's hash (a file edited since the scan fails the write).
 */
export async function writeDelta(plan: DeltaPlan, known: ReadonlySet<string>, outPath: string, opts: { zstdLevel?: number } = {}): Promise<WriteDeltaResult> {
  const tmp = `${outPath}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o600);
  const sink = new DeltaSink(fh);
  const compressor = new ChunkCompressor(opts.zstdLevel ?? DELTA_ZSTD_LEVEL);
  const out: WriteDeltaResult = { sizeBytes: 0, refChunks: 0, literalChunks: 0, literalRawBytes: 0, tarSizeBytes: plan.tarSizeBytes };
  let ok = false;
  try {
    await sink.put(header(plan));
    for (const [i, e] of plan.entries.entries()) {
      await sink.put(encodeEntryRecord(e));
      const f = plan.files[i];
      if (e.type !== 'file' || !f) continue;
      await writeFileChunks(sink, e, f, known, compressor, out);
    }
    const t = Buffer.alloc(1 + 12);
    t.writeUInt8(REC_TRAILER, 0);
    t.writeUInt32LE(plan.entries.length, 1);
    t.writeUInt32LE(out.refChunks, 5);
    t.writeUInt32LE(out.literalChunks, 9);
    await sink.put(t);
    const digest = sink.digest();
    await sink.flush();
    await fh.write(digest);
    out.sizeBytes = sink.written + digest.length;
    await fh.sync();
    ok = true;
  } finally {
    await fh.close();
    if (!ok) await rm(tmp, { force: true });
  }
  await rename(tmp, outPath);
  return out;
}

async function writeFileChunks(sink: DeltaSink, e: TarWriteEntry, f: ScannedFile, known: ReadonlySet<string>, compressor: ChunkCompressor, out: WriteDeltaResult): Promise<void> {
  let fh: FileHandle | undefined;
  let offset = 0;
  try {
    for (let i = 0; i < f.lengths.length; i++) {
      const len = f.lengths[i];
      const hash = f.hashes.subarray(32 * i, 32 * i + 32);
      const id = Buffer.from(hash.buffer, hash.byteOffset, 32).toString('hex');
      if (known.has(id)) {
        const r = Buffer.allocUnsafe(1 + 32 + 4);
        r.writeUInt8(REC_REF, 0);
        r.set(hash, 1);
        r.writeUInt32LE(len, 33);
        await sink.put(r);
        out.refChunks++;
      } else {
        fh ??= await open(e.source, 'r');
        const raw = Buffer.allocUnsafe(len);
        const { bytesRead } = await fh.read(raw, 0, len, offset);
        if (bytesRead !== len || !createHash('sha256').update(raw).digest().equals(hash)) {
          throw new Error(`${e.source} changed since it was scanned; push again`);
        }
        const rec = Buffer.allocUnsafe(1 + 32 + 4 + 1 + 4 + compressBound(len));
        rec.writeUInt8(REC_LITERAL, 0);
        rec.set(hash, 1);
        rec.writeUInt32LE(len, 33);
        const { codec, bytes } = compressor.encodeInto(raw, rec, 42);
        rec.writeUInt8(codec, 37);
        rec.writeUInt32LE(bytes, 38);
        await sink.put(rec.subarray(0, 42 + bytes));
        out.literalChunks++;
        out.literalRawBytes += len;
      }
      offset += len;
    }
  } finally {
    await fh?.close();
  }
}

/** Scan and write in one call: the delta of `entries` against the chunk ids (hex) in `knownIds`. */
export async function makeDelta(entries: readonly TarWriteEntry[], knownIds: ReadonlySet<string>, outPath: string, opts: ScanOptions & { zstdLevel?: number } = {}): Promise<WriteDeltaResult & { plan: DeltaPlan }> {
  const plan = await scanBuild(entries, opts);
  return { ...(await writeDelta(plan, knownIds, outPath, opts)), plan };
}
