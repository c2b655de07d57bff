// Binary manifest codec (layout in docs/FORMATS.md, "Image > Manifest").
// encodeManifest validates the model it is given; decodeManifest accepts any bytes and either returns a
// manifest whose cross-references are all in range or throws FormatError / CorruptionError — it never crashes
// on hostile input, never allocates more than the input justifies, and always terminates.
import { createHash } from 'node:crypto';
import { CorruptionError, FormatError } from '../errors.js';
import { ByteReader, ByteWriter, formatFailure } from './bytes.js';
import {
  CHUNKING_ALGORITHM_FASTCDC,
  CHUNK_MAX_BOUND_BYTES,
  IMAGE_FORMAT_VERSION,
  MANIFEST_BODY_CODEC_ZSTD,
  MANIFEST_FLAG_PROFILE,
  MANIFEST_FLAG_PROFILE_MARGIN,
  MANIFEST_HASHED_HEADER_BYTES,
  MANIFEST_HEADER_BYTES,
  MANIFEST_MAGIC,
  MANIFEST_MAX_RAW_BYTES,
  MANIFEST_ZSTD_LEVEL,
} from './constants.js';
import { isNormalEntryPath, parentOf } from './paths.js';
import { Codec, type ChunkEntry, type ChunkingParams, type EntryType, type FileEntry, type Manifest, type PackEntry } from './types.js';
import { zstdCompress, zstdDecompressExact } from '../codec/chunk-codec.js';

const TYPE_IDS: Record<EntryType, number> = { file: 0, dir: 1, symlink: 2, hardlink: 3 };
const TYPES: EntryType[] = ['file', 'dir', 'symlink', 'hardlink'];
const MAX_PATH_BYTES = 64 * 1024;
const MAX_NAME_BYTES = 1024;
const EMPTY = new Uint8Array(0);

/** Encodes a manifest to its file bytes. Throws RangeError if the model is inconsistent (a bug in the caller). */
export function encodeManifest(m: Manifest): Uint8Array {
  const w = new ByteWriter();
  w.varint(CHUNKING_ALGORITHM_FASTCDC);
  w.varint(m.chunking.minSizeBytes);
  w.varint(m.chunking.avgSizeBytes);
  w.varint(m.chunking.maxSizeBytes);

  w.varint(m.packs.length);
  for (const p of m.packs) {
    w.string(p.name);
    w.varint(p.sizeBytes);
  }

  w.varint(m.chunks.length);
  let prevPack = 0;
  let expectOffset = 0;
  for (const c of m.chunks) {
    if (c.hash.length !== 32) throw new RangeError('chunk hash must be 32 bytes');
    if (c.pack < 0 || c.pack >= m.packs.length) throw new RangeError(`chunk pack index ${c.pack} out of range`);
    w.bytes(c.hash);
    w.u8(c.codec);
    w.varint(c.rawSizeBytes);
    if (c.codec !== Codec.Raw) w.varint(c.storedSizeBytes);
    else if (c.storedSizeBytes !== c.rawSizeBytes) throw new RangeError('raw chunk with stored size != raw size');
    w.svarint(c.pack - prevPack);
    if (c.pack !== prevPack) expectOffset = 0;
    // Offsets are written relative to where the previous chunk ended in the same pack: 0 in stream order.
    w.svarint(c.offset - expectOffset);
    prevPack = c.pack;
    expectOffset = c.offset + c.storedSizeBytes;
  }

  w.varint(m.files.length);
  let prevPath = Buffer.alloc(0);
  for (const f of m.files) {
    const path = Buffer.from(f.path, 'utf8');
    let common = 0;
    const lim = Math.min(path.length, prevPath.length);
    while (common < lim && path[common] === prevPath[common]) common++;
    // Never split a UTF-8 sequence: back off to a character start.
    while (common > 0 && common < path.length && (path[common] & 0xc0) === 0x80) common--;
    w.u8(TYPE_IDS[f.type]);
    w.varint(common);
    w.varint(path.length - common);
    w.bytes(path.subarray(common));
    w.varint(f.mode);
    prevPath = path;
    if (f.type === 'file') {
      if (f.sha256.length !== 32) throw new RangeError(`file ${f.path}: sha256 must be 32 bytes`);
      w.varint(f.sizeBytes);
      w.bytes(f.sha256);
      w.varint(f.chunks.length);
      let prev = -1;
      for (const ci of f.chunks) {
        w.svarint(ci - (prev + 1));
        prev = ci;
      }
    } else if (f.type === 'symlink' || f.type === 'hardlink') {
      w.string(f.linkTarget);
    }
  }

  let flags = 0;
  if (m.profile) {
    flags |= MANIFEST_FLAG_PROFILE;
    w.varint(m.profile.points.length);
    let t = 0;
    let need = 0;
    for (const p of m.profile.points) {
      if (!Number.isSafeInteger(p.tMs) || p.tMs < t || !Number.isSafeInteger(p.needBytes) || p.needBytes < 0) {
        throw new RangeError('profile points need integer tMs ascending and needBytes ≥ 0');
      }
      w.varint(p.tMs - t);
      w.svarint(p.needBytes - need);
      t = p.tMs;
      need = p.needBytes;
    }
    const margins = m.profile.margins ?? [];
    if (margins.length > 0) {
      flags |= MANIFEST_FLAG_PROFILE_MARGIN;
      w.varint(margins.length);
      let b = 0;
      for (const e of margins) {
        if (!Number.isSafeInteger(e.bytesPerSecond) || e.bytesPerSecond <= b || !Number.isSafeInteger(e.marginBytes) || e.marginBytes < 0) {
          throw new RangeError('profile margins need integer bytesPerSecond strictly ascending (> 0) and marginBytes ≥ 0');
        }
        w.varint(e.bytesPerSecond - b);
        w.varint(e.marginBytes);
        b = e.bytesPerSecond;
      }
    }
  }

  return sealManifestBody(w.finish(), flags);
}

/** Compresses a raw body and adds the header and hash. Exported for tests that feed crafted bodies to the decoder. */
export function sealManifestBody(raw: Uint8Array, flags: number | boolean): Uint8Array {
  const body = zstdCompress(raw, MANIFEST_ZSTD_LEVEL);
  const out = new Uint8Array(MANIFEST_HEADER_BYTES + body.length);
  const view = new DataView(out.buffer);
  out.set(MANIFEST_MAGIC, 0);
  view.setUint16(4, IMAGE_FORMAT_VERSION, true);
  view.setUint16(6, flags === true ? MANIFEST_FLAG_PROFILE : flags === false ? 0 : flags, true);
  out[8] = MANIFEST_BODY_CODEC_ZSTD;
  view.setUint32(12, body.length, true);
  view.setUint32(16, raw.length, true);
  out.set(body, MANIFEST_HEADER_BYTES);
  out.set(bodyHash(out.subarray(0, MANIFEST_HASHED_HEADER_BYTES), body), MANIFEST_HASHED_HEADER_BYTES);
  return out;
}

function bodyHash(header: Uint8Array, body: Uint8Array): Buffer {
  return createHash('sha256').update(header).update(body).digest();
}

/**
 * Decodes manifest file bytes. `name` is used in error messages.
 * Throws FormatError (bad magic, unsupported version/codec, malformed body, out-of-range references) or
 * CorruptionError kind 'manifest' (hash mismatch: the bytes were damaged after writing).
 */
export function decodeManifest(bytes: Uint8Array, name = 'manifest'): Manifest {
  if (bytes.length < MANIFEST_HEADER_BYTES) throw new FormatError(`${name}: too short for a manifest (${bytes.length} bytes)`, 'format-truncated');
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== MANIFEST_MAGIC[i]) throw new FormatError(`${name}: not a ROCKIT manifest (bad magic)`, 'format-bad-magic');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(4, true);
  if (version !== IMAGE_FORMAT_VERSION) throw new FormatError(`${name}: unsupported format version ${version}`, 'format-unsupported-version');
  const flags = view.getUint16(6, true);
  if ((flags & ~(MANIFEST_FLAG_PROFILE | MANIFEST_FLAG_PROFILE_MARGIN)) !== 0) throw new FormatError(`${name}: unknown flags ${flags}`, 'format-invalid');
  if ((flags & MANIFEST_FLAG_PROFILE_MARGIN) !== 0 && (flags & MANIFEST_FLAG_PROFILE) === 0) {
    throw new FormatError(`${name}: a profile margin table without a profile`, 'format-invalid');
  }
  if (bytes[8] !== MANIFEST_BODY_CODEC_ZSTD) throw new FormatError(`${name}: unknown body codec ${bytes[8]}`, 'format-bad-codec');
  const storedLen = view.getUint32(12, true);
  const rawLen = view.getUint32(16, true);
  if (storedLen !== bytes.length - MANIFEST_HEADER_BYTES) {
    throw new CorruptionError('manifest', name, `${name}: body is ${bytes.length - MANIFEST_HEADER_BYTES} bytes, header says ${storedLen} (truncated or damaged)`);
  }
  if (rawLen > MANIFEST_MAX_RAW_BYTES) throw new FormatError(`${name}: body of ${rawLen} bytes exceeds the limit`, 'format-limit');
  const body = bytes.subarray(MANIFEST_HEADER_BYTES);
  const expected = bytes.subarray(MANIFEST_HASHED_HEADER_BYTES, MANIFEST_HEADER_BYTES);
  if (!bodyHash(bytes.subarray(0, MANIFEST_HASHED_HEADER_BYTES), body).equals(expected)) {
    throw new CorruptionError('manifest', name, `${name}: SHA-256 mismatch (manifest damaged)`);
  }
  let raw: Uint8Array;
  try {
    raw = zstdDecompressExact(body, rawLen);
  } catch {
    throw new FormatError(`${name}: body does not decompress to ${rawLen} bytes`, 'format-bad-body');
  }
  return decodeBody(new ByteReader(raw, formatFailure(name)), name, (flags & MANIFEST_FLAG_PROFILE) !== 0, (flags & MANIFEST_FLAG_PROFILE_MARGIN) !== 0);
}
/** Throws the FormatError of a malformed body (never returns). */
type Bad = (detail: string) => never;

function decodeBody(r: ByteReader, name: string, hasProfile: boolean, hasMargins = false): Manifest {
  const bad: Bad = (detail) => {
    throw new FormatError(`${name}: ${detail}`, 'format-invalid');
  };
  const chunking = decodeChunking(r, bad);
  const packs = decodePacks(r, bad);
  const chunks = decodeChunks(r, packs, bad);
  const files = decodeFiles(r, chunks, bad);
  const manifest: Manifest = { formatVersion: IMAGE_FORMAT_VERSION, chunking, files, chunks, packs };
  if (hasProfile) manifest.profile = decodeProfile(r, hasMargins, bad);
  if (r.remaining !== 0) bad(`${r.remaining} trailing bytes`);
  return manifest;
}

function decodeChunking(r: ByteReader, bad: Bad): ChunkingParams {
  const algorithm = r.varint();
  if (algorithm !== CHUNKING_ALGORITHM_FASTCDC) bad(`unknown chunking algorithm ${algorithm}`);
  const minSizeBytes = r.varint();
  const avgSizeBytes = r.varint();
  const maxSizeBytes = r.varint();
  if (!(minSizeBytes > 0 && minSizeBytes <= avgSizeBytes && avgSizeBytes <= maxSizeBytes && maxSizeBytes <= CHUNK_MAX_BOUND_BYTES)) {
    bad('implausible chunking parameters');
  }
  return { algorithm: 'fastcdc', minSizeBytes, avgSizeBytes, maxSizeBytes };
}

function decodePacks(r: ByteReader, bad: Bad): PackEntry[] {
  const packCount = r.count(2, 10_000_000);
  const packs: PackEntry[] = [];
  const packNames = new Set<string>();
  for (let i = 0; i < packCount; i++) {
    const pname = r.string(MAX_NAME_BYTES);
    if (!/^[0-9a-zA-Z._-]+$/.test(pname) || pname.startsWith('.')) bad(`invalid pack name`);
    if (packNames.has(pname)) bad(`duplicate pack name ${pname}`);
    packNames.add(pname);
    packs.push({ name: pname, sizeBytes: r.varint() });
  }
  return packs;
}

function decodeChunks(r: ByteReader, packs: PackEntry[], bad: Bad): ChunkEntry[] {
  const packCount = packs.length;
  const chunkCount = r.count(36, 1 << 30);
  const chunks: ChunkEntry[] = new Array(chunkCount);
  let prevPack = 0;
  let expectOffset = 0;
  for (let i = 0; i < chunkCount; i++) {
    const hash = r.bytes(32).slice();
    const codec = r.u8();
    if (codec !== Codec.Raw && codec !== Codec.Zstd) bad(`chunk ${i}: unknown codec ${codec}`);
    const rawSizeBytes = r.varint();
    const storedSizeBytes = codec === Codec.Raw ? rawSizeBytes : r.varint();
    const pack = prevPack + r.svarint();
    if (pack < 0 || pack >= packCount) bad(`chunk ${i}: pack index ${pack} out of range`);
    if (pack !== prevPack) expectOffset = 0;
    const offset = expectOffset + r.svarint();
    if (rawSizeBytes > CHUNK_MAX_BOUND_BYTES || storedSizeBytes > CHUNK_MAX_BOUND_BYTES) bad(`chunk ${i}: implausible size`);
    if (offset < 0 || offset + storedSizeBytes > packs[pack].sizeBytes) bad(`chunk ${i}: lies outside its pack`);
    chunks[i] = { hash, rawSizeBytes, storedSizeBytes, codec: codec as Codec, pack, offset };
    prevPack = pack;
    expectOffset = offset + storedSizeBytes;
  }
  return chunks;
}

function decodeFiles(r: ByteReader, chunks: ChunkEntry[], bad: Bad): FileEntry[] {
  const chunkCount = chunks.length;
  const fileCount = r.count(4, 1 << 30);
  const files: FileEntry[] = new Array(fileCount);
  const byPath = new Map<string, FileEntry>();
  let prevPath: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < fileCount; i++) {
    const typeId = r.u8();
    const type = TYPES[typeId];
    if (type === undefined) bad(`entry ${i}: unknown type ${typeId}`);
    const common = r.varint();
    const suffixLen = r.varint();
    if (common > prevPath.length || common + suffixLen > MAX_PATH_BYTES) bad(`entry ${i}: invalid path encoding`);
    const suffix = r.bytes(suffixLen);
    const pathBytes = new Uint8Array(common + suffixLen);
    pathBytes.set(prevPath.subarray(0, common));
    pathBytes.set(suffix, common);
    prevPath = pathBytes;
    const path = Buffer.from(pathBytes).toString('utf8');
    if (!isNormalEntryPath(path) || !Buffer.from(path, 'utf8').equals(pathBytes)) bad(`entry ${i}: invalid path`);
    if (byPath.has(path)) bad(`duplicate path ${JSON.stringify(path)}`);
    const mode = r.varint();
    if (mode > 0o7777) bad(`entry ${i}: invalid mode`);
    const entry: FileEntry = { path, type, mode, sizeBytes: 0, sha256: EMPTY, linkTarget: '', chunks: [] };
    if (type === 'file') {
      entry.sizeBytes = r.varint();
      entry.sha256 = r.bytes(32).slice();
      const n = r.count(1, chunkCount === 0 ? 0 : Number.MAX_SAFE_INTEGER);
      const list = new Array<number>(n);
      let prev = -1;
      let total = 0;
      for (let k = 0; k < n; k++) {
        const ci = prev + 1 + r.svarint();
        if (ci < 0 || ci >= chunkCount) bad(`entry ${i}: chunk index out of range`);
        list[k] = ci;
        total += chunks[ci].rawSizeBytes;
        prev = ci;
      }
      if (total !== entry.sizeBytes) bad(`entry ${i}: chunk sizes add up to ${total}, file size is ${entry.sizeBytes}`);
      entry.chunks = list;
    } else if (type === 'symlink') {
      entry.linkTarget = r.string(MAX_PATH_BYTES);
      if (entry.linkTarget === '' || entry.linkTarget.includes('\0')) bad(`entry ${i}: invalid link target`);
    } else if (type === 'hardlink') {
      entry.linkTarget = r.string(MAX_PATH_BYTES);
      const target = byPath.get(entry.linkTarget);
      if (!target || target.type !== 'file') bad(`entry ${i}: hard link to a missing or non-file entry`);
    }
    files[i] = entry;
    byPath.set(path, entry);
  }
  // An entry may not live beneath a non-directory (that would write through a symlink or into a file).
  for (const f of files) {
    for (let a = parentOf(f.path); a !== ''; a = parentOf(a)) {
      const p = byPath.get(a);
      if (p && p.type !== 'dir') bad(`entry ${JSON.stringify(f.path)} lies beneath a ${p.type}`);
    }
  }
  return files;
}

function decodeProfile(r: ByteReader, hasMargins: boolean, bad: Bad): NonNullable<Manifest['profile']> {
  const n = r.count(2, 1 << 26);
  const points: Array<{ tMs: number; needBytes: number }> = [];
  let t = 0;
  let need = 0;
  for (let i = 0; i < n; i++) {
    t += r.varint();
    need += r.svarint();
    if (need < 0 || !Number.isSafeInteger(t) || !Number.isSafeInteger(need)) bad(`profile point ${i} out of range`);
    points.push({ tMs: t, needBytes: need });
  }
  const profile: NonNullable<Manifest['profile']> = { points };
  if (hasMargins) {
    const k = r.count(2, 1 << 16);
    const margins: Array<{ bytesPerSecond: number; marginBytes: number }> = [];
    let b = 0;
    for (let i = 0; i < k; i++) {
      const db = r.varint();
      if (db === 0) bad(`profile margin ${i}: bandwidths must be strictly ascending`);
      b += db;
      const marginBytes = r.varint();
      if (!Number.isSafeInteger(b)) bad(`profile margin ${i} out of range`);
      margins.push({ bytesPerSecond: b, marginBytes });
    }
    profile.margins = margins;
  }
  return profile;
}
