// Reads of A's installed files for applyPatch: chunk spans at known offsets, each chunk checked against A's
// manifest unless the caller verifies the bytes another way. A's folder is read only.

import { createHash } from 'node:crypto';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Manifest } from '../format/types.js';
import { DATA_PART_NAME } from './constants.js';
import { PatchCorruptError, WrongBaseError } from './errors.js';
import type { RefSegment } from './format.js';

/** Open A files kept at once (least recently opened closed first). */
const MAX_OPEN_BASE_FILES = 64;

/** A reference segment located in A: file index, byte offset, A's chunk indexes. */
export interface PlannedRef {
  aFile: number;
  offset: number;
  chunks: number[];
}

/** A's files, opened on first use. `closeAll()` must be called. */
export class BaseReader {
  private readonly handles = new Map<number, FileHandle>();
  private readonly offsets = new Map<number, number[]>();

  constructor(
    private readonly a: Manifest,
    private readonly fromDir: string,
  ) {}

  /** Concatenated bytes of reference segments of A, each chunk checked against A's manifest. */
  async readRefs(refs: RefSegment[], maxBytes: number, offset: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (const s of this.planRefs(refs, maxBytes, offset)) parts.push(await this.readA(s.aFile, s.offset, s.chunks));
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /**
   * Where reference segments of A are (file, byte offset, A chunk indexes), checked to lie inside A's
   * manifest and to total at most `maxBytes`; nothing is read.
   */
  planRefs(refs: RefSegment[], maxBytes: number, offset: number): PlannedRef[] {
    const out: PlannedRef[] = [];
    let size = 0;
    for (const s of refs) {
      const af = this.a.files[s.aFile];
      if (!af || af.type !== 'file' || s.count === 0 || s.ordinal + s.count > af.chunks.length) {
        throw new PatchCorruptError(DATA_PART_NAME, 'reference outside the base build', offset);
      }
      const chunks = af.chunks.slice(s.ordinal, s.ordinal + s.count);
      size += chunks.reduce((t, ci) => t + this.a.chunks[ci].rawSizeBytes, 0);
      if (size > maxBytes) throw new PatchCorruptError(DATA_PART_NAME, 'reference too large', offset);
      out.push({ aFile: s.aFile, offset: this.offsetsOf(s.aFile)[s.ordinal], chunks });
    }
    return out;
  }

  /**
   * Reads A chunks `chunkIdx` (consecutive in A file fi from `offset`) and, unless `verify` is false,
   * checks each against A's manifest. Reads into `into` when it is large enough.
   */
  async readA(fi: number, offset: number, chunkIdx: number[], verify = true, into?: Buffer): Promise<Buffer> {
    const size = chunkIdx.reduce((s, ci) => s + this.a.chunks[ci].rawSizeBytes, 0);
    const fh = await this.handle(fi);
    const buf = into && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
    const { bytesRead } = await fh.read(buf, 0, size, offset);
    const path = this.a.files[fi].path;
    if (bytesRead !== size) throw new WrongBaseError(path, `shorter than expected (read ${bytesRead} of ${size} bytes at ${offset})`);
    if (!verify) return buf;
    let p = 0;
    for (const ci of chunkIdx) {
      const c = this.a.chunks[ci];
      if (!createHash('sha256').update(buf.subarray(p, p + c.rawSizeBytes)).digest().equals(c.hash)) {
        throw new WrongBaseError(path, `bytes at offset ${offset + p} differ`);
      }
      p += c.rawSizeBytes;
    }
    return buf;
  }

  async closeAll(): Promise<void> {
    for (const fh of this.handles.values()) await fh.close();
    this.handles.clear();
  }

  private async handle(fi: number): Promise<FileHandle> {
    let fh = this.handles.get(fi);
    if (fh) return fh;
    const path = this.a.files[fi].path;
    try {
      const st = await lstat(join(this.fromDir, path));
      if (!st.isFile()) throw new WrongBaseError(path, 'not a regular file');
      fh = await open(join(this.fromDir, path), 'r');
    } catch (err) {
      if (err instanceof WrongBaseError) throw err;
      throw new WrongBaseError(path, `cannot open (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (this.handles.size >= MAX_OPEN_BASE_FILES) {
      const [k, v] = this.handles.entries().next().value as [number, FileHandle];
      this.handles.delete(k);
      await v.close();
    }
    this.handles.set(fi, fh);
    return fh;
  }

  /** Byte offsets of the chunks of A file fi (one more entry than chunks: the file's size last). */
  private offsetsOf(fi: number): number[] {
    let o = this.offsets.get(fi);
    if (!o) {
      o = [0];
      for (const ci of this.a.files[fi].chunks) o.push(o[o.length - 1] + this.a.chunks[ci].rawSizeBytes);
      this.offsets.set(fi, o);
    }
    return o;
  }
}
