// Streaming, hostile-input-safe reader of the delta format (layout in constants.ts and docs/FORMATS.md).
// Memory stays bounded: a record is held at most, and a literal's stored bytes are bounded by the
// header's (validated) maximum chunk size. Everything a later step relies on is checked here: paths,
// modes, lengths that add up to each file's size, counts, the tar size and the trailer's SHA-256.
import { createHash, type Hash } from 'node:crypto';
import { validateChunkingParams } from '../chunker/fastcdc.js';
import { compressBound } from '../codec/chunk-codec.js';
import { DEFAULT_LIMITS, type InputLimits } from '../format/constants.js';
import { normaliseEntryPath, resolveLinkTarget } from '../format/paths.js';
import { Codec, type ChunkingParams } from '../format/types.js';
import { encodeTarHeader, type TarWriteEntry } from '../tar/tar-writer.js';
import {
  DELTA_FORMAT_VERSION, DELTA_HEADER_BYTES, DELTA_MAGIC, ENTRY_DIR, ENTRY_FILE, ENTRY_FIXED_BYTES, ENTRY_SYMLINK, LITERAL_FIXED_BYTES,
  MAX_MODE, MAX_MTIME, REC_ENTRY, REC_LITERAL, REC_REF, REC_TRAILER, REF_BYTES, TRAILER_BYTES,
} from './constants.js';
import { DeltaError } from './errors.js';

export interface DeltaHeader {
  version: number;
  chunking: ChunkingParams;
  tarSizeBytes: number;
}

/** One item of a delta, in order: the header first, then entries each followed by its file's pieces. */
export type DeltaItem =
  | { kind: 'header'; header: DeltaHeader }
  | { kind: 'entry'; entry: TarWriteEntry }
  | { kind: 'ref'; hash: Uint8Array; rawLength: number }
  | { kind: 'literal'; hash: Uint8Array; rawLength: number; codec: Codec; stored: Uint8Array }
  | { kind: 'end'; entries: number; refs: number; literals: number };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Pulls exact byte counts out of an async stream of buffers, hashing what it hands out. */
class Pull {
  private it: AsyncIterator<Uint8Array>;
  private cur: Uint8Array = new Uint8Array(0);
  private pos = 0;
  offset = 0;
  readonly hash: Hash = createHash('sha256');
  constructor(src: AsyncIterable<Uint8Array>) {
    this.it = src[Symbol.asyncIterator]();
  }

  /** Exactly n bytes, or null at a clean end of input before the first byte; throws on a short read. */
  async take(n: number, what: string, hashed = true): Promise<Uint8Array> {
    if (this.cur.length - this.pos >= n) {
      const out = this.cur.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.offset += n;
      if (hashed) this.hash.update(out);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      if (this.pos >= this.cur.length) {
        const r = await this.it.next();
        if (r.done) throw bad(`truncated: ${what} needs ${n} bytes, ${got} left at byte ${this.offset}`);
        this.cur = r.value;
        this.pos = 0;
        continue;
      }
      const k = Math.min(n - got, this.cur.length - this.pos);
      out.set(this.cur.subarray(this.pos, this.pos + k), got);
      this.pos += k;
      got += k;
      this.offset += k;
    }
    if (hashed) this.hash.update(out);
    return out;
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    while (this.pos >= this.cur.length) {
      const r = await this.it.next();
      if (r.done) return true;
      this.cur = r.value;
      this.pos = 0;
    }
    return false;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

function bad(message: string): DeltaError {
  return new DeltaError('not-a-delta', `delta: ${message}`);
}

function u64(b: Buffer, at: number, what: string): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${what} out of range`);
  return Number(v);
}

function parseHeader(b: Buffer): DeltaHeader {
  if (!DELTA_MAGIC.every((x, i) => b[i] === x)) throw bad('bad magic (not a delta file)');
  const version = b.readUInt16LE(4);
  if (version !== DELTA_FORMAT_VERSION) throw bad(`unsupported version ${version}`);
  if (b.readUInt16LE(6) !== 0 || b[20] !== 1 || b[21] !== 0 || b[22] !== 0 || b[23] !== 0) throw bad('unknown flags or codec in the header');
  const chunking: ChunkingParams = { algorithm: 'fastcdc', minSizeBytes: b.readUInt32LE(8), avgSizeBytes: b.readUInt32LE(12), maxSizeBytes: b.readUInt32LE(16) };
  try {
    validateChunkingParams(chunking);
  } catch {
    throw bad('invalid chunking parameters in the header');
  }
  return { version, chunking, tarSizeBytes: u64(b, 24, 'tar size') };
}

function tarBytesOf(e: TarWriteEntry): number {
  const pad = e.size % 512 === 0 ? 0 : 512 - (e.size % 512);
  return encodeTarHeader(e).length + e.size + pad;
}

/**
 * Reads a delta, yielding its items in order; every check of the format is made before an item is
 * yielded (the trailer's checksum covers the whole file and is checked before 'end'). `limits` bound
 * entries, path length and total content like a tar input's. Errors: DeltaError 'not-a-delta'.
 */
export async function* readDelta(source: AsyncIterable<Uint8Array>, limits?: Partial<InputLimits>): AsyncGenerator<DeltaItem> {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  const pull = new Pull(source);
  try {
    const header = parseHeader(Buffer.from(await pull.take(DELTA_HEADER_BYTES, 'the header')));
    yield { kind: 'header', header };
    const maxChunk = header.chunking.maxSizeBytes;
    let entries = 0;
    let refs = 0;
    let literals = 0;
    let totalBytes = 0;
    let tarBytes = 1024; // end-of-archive marker
    let fileLeft = 0; // bytes of the current file still to come as pieces
    for (;;) {
      const type = (await pull.take(1, 'a record type'))[0];
      if (type === REC_ENTRY) {
        if (fileLeft > 0) throw bad(`entry ${entries} ends ${fileLeft} bytes short of its size`);
        const entry = await readEntry(pull, lim);
        if (++entries > lim.maxFiles) throw bad(`more than ${lim.maxFiles} entries`);
        totalBytes += entry.size;
        if (totalBytes > lim.maxTotalBytes) throw bad(`content exceeds ${lim.maxTotalBytes} bytes`);
        tarBytes += tarBytesOf(entry);
        if (tarBytes > header.tarSizeBytes) throw bad('the entries exceed the tar size in the header');
        fileLeft = entry.size;
        yield { kind: 'entry', entry };
      } else if (type === REC_REF || type === REC_LITERAL) {
        const fixed = Buffer.from(await pull.take(type === REC_REF ? REF_BYTES : LITERAL_FIXED_BYTES, 'a chunk record'));
        const hash = Buffer.from(fixed.subarray(0, 32));
        const rawLength = fixed.readUInt32LE(32);
        if (rawLength === 0 || rawLength > maxChunk) throw bad(`chunk of ${rawLength} bytes (limit ${maxChunk})`);
        if (rawLength > fileLeft) throw bad(`chunk of ${rawLength} bytes runs past its file (${fileLeft} left)`);
        fileLeft -= rawLength;
        if (type === REC_REF) {
          refs++;
          yield { kind: 'ref', hash, rawLength };
          continue;
        }
        const codec = fixed[36];
        const storedLength = fixed.readUInt32LE(37);
        if (codec !== Codec.Raw && codec !== Codec.Zstd) throw bad(`unknown literal codec ${codec}`);
        if (codec === Codec.Raw ? storedLength !== rawLength : storedLength === 0 || storedLength > compressBound(rawLength)) {
          throw bad(`literal of ${storedLength} stored bytes for ${rawLength} raw bytes`);
        }
        const stored = await pull.take(storedLength, 'a literal chunk');
        literals++;
        yield { kind: 'literal', hash, rawLength, codec: codec as Codec, stored };
      } else if (type === REC_TRAILER) {
        if (fileLeft > 0) throw bad(`the last entry ends ${fileLeft} bytes short of its size`);
        const t = Buffer.from(await pull.take(12, 'the trailer'));
        const digest = pull.hash.digest();
        const stated = await pull.take(TRAILER_BYTES - 12, 'the trailer checksum', false);
        if (!digest.equals(stated)) throw bad('trailer checksum does not match (damaged or truncated)');
        if (t.readUInt32LE(0) !== entries || t.readUInt32LE(4) !== refs || t.readUInt32LE(8) !== literals) throw bad('trailer counts disagree with the records');
        if (tarBytes !== header.tarSizeBytes) throw bad(`the entries make a tar of ${tarBytes} bytes, the header says ${header.tarSizeBytes}`);
        if (!(await pull.atEnd())) throw bad('bytes after the trailer');
        yield { kind: 'end', entries, refs, literals };
        return;
      } else {
        throw bad(`unknown record type 0x${type.toString(16)} at byte ${pull.offset - 1}`);
      }
    }
  } finally {
    await pull.close();
  }
}

async function readEntry(pull: Pull, lim: InputLimits): Promise<TarWriteEntry> {
  const f = Buffer.from(await pull.take(ENTRY_FIXED_BYTES, 'an entry'));
  const type = f[0];
  const mode = f.readUInt32LE(1);
  const mtime = u64(f, 5, 'mtime');
  const size = u64(f, 13, 'size');
  const nameLen = f.readUInt16LE(21);
  const linkLen = f.readUInt16LE(23);
  if (type !== ENTRY_FILE && type !== ENTRY_DIR && type !== ENTRY_SYMLINK) throw bad(`unknown entry type ${type}`);
  if (mode > MAX_MODE || mtime > MAX_MTIME) throw bad('mode or mtime out of range');
  if (nameLen === 0 || nameLen > lim.maxPathLength || linkLen > lim.maxPathLength) throw bad(`path of ${nameLen} bytes (limit ${lim.maxPathLength})`);
  if (type !== ENTRY_FILE && size !== 0) throw bad('a folder or symlink with a size');
  if (type !== ENTRY_SYMLINK && linkLen !== 0) throw bad('a link target on a non-link');
  let name: string;
  let link: string;
  try {
    name = utf8.decode(await pull.take(nameLen, 'a path'));
    link = utf8.decode(await pull.take(linkLen, 'a link target'));
  } catch (err) {
    if (err instanceof DeltaError) throw err;
    throw bad('a path is not valid UTF-8');
  }
  const norm = normaliseEntryPath(name);
  if (!('path' in norm) || norm.path !== name) throw bad(`unsafe or unnormalised path ${JSON.stringify(name.slice(0, 200))}`);
  if (type === ENTRY_SYMLINK && resolveLinkTarget(name, link) === undefined) throw bad(`symlink points outside the root: ${JSON.stringify(name.slice(0, 200))}`);
  const kind = type === ENTRY_FILE ? 'file' : type === ENTRY_DIR ? 'directory' : 'symlink';
  return { name, type: kind, source: '', size, mode, mtime, ...(kind === 'symlink' ? { linkname: link } : {}) };
}
