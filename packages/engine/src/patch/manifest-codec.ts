// Canonical byte encoding of a Manifest used inside patches (docs/FORMATS.md, "## Patch").
// It is laid out so that two manifests of neighbouring builds share long identical byte runs:
// chunk hashes in one column, offsets written relative to the previous chunk's end, chunk lists
// as differences from "next index", so inserting one chunk does not change every later entry.
// B's encoding is then compressed with zstd using A's encoding as raw-content dictionary.

import { createHash } from 'node:crypto';
import { CHUNK_MAX_BOUND_BYTES } from '../format/constants.js';
import type { ChunkEntry, FileEntry, Manifest, EntryType } from '../format/types.js';
import { ByteReader, ByteWriter } from '../format/bytes.js';

const ENTRY_TYPES: EntryType[] = ['file', 'dir', 'symlink', 'hardlink'];

/** Deterministic: equal manifests give equal bytes. */
export function encodeManifestCanonical(m: Manifest): Buffer {
  const w = new ByteWriter();
  w.varint(m.formatVersion);
  w.u8(0); // chunking algorithm: 0 = fastcdc
  w.varint(m.chunking.minSizeBytes);
  w.varint(m.chunking.avgSizeBytes);
  w.varint(m.chunking.maxSizeBytes);
  w.varint(m.packs.length);
  for (const p of m.packs) {
    w.string(p.name);
    w.varint(p.sizeBytes);
  }
  const chunks = m.chunks;
  w.varint(chunks.length);
  for (const c of chunks) w.bytes(c.hash);
  for (const c of chunks) w.varint(c.rawSizeBytes);
  for (const c of chunks) w.u8(c.codec);
  let prevPack = 0;
  let prevEnd = 0;
  for (const c of chunks) {
    w.svarint(c.pack - prevPack);
    if (c.pack !== prevPack) prevEnd = 0;
    w.svarint(c.offset - prevEnd);
    w.svarint(c.storedSizeBytes - c.rawSizeBytes);
    prevPack = c.pack;
    prevEnd = c.offset + c.storedSizeBytes;
  }
  w.varint(m.files.length);
  let prevPath = '';
  for (const f of m.files) {
    let common = 0;
    const max = Math.min(prevPath.length, f.path.length);
    while (common < max && prevPath.charCodeAt(common) === f.path.charCodeAt(common)) common++;
    w.varint(common);
    w.string(f.path.slice(common));
    prevPath = f.path;
    w.u8(ENTRY_TYPES.indexOf(f.type));
    w.varint(f.mode);
    w.varint(f.sizeBytes);
    w.varint(f.sha256.length);
    w.bytes(f.sha256);
    w.string(f.linkTarget);
    w.varint(f.chunks.length);
    let prev = -1;
    for (const ci of f.chunks) {
      w.svarint(ci - (prev + 1));
      prev = ci;
    }
  }
  if (m.profile) {
    // 1 = points only (the original form, so older manifests keep their manifestId), 2 = points + margins.
    const margins = m.profile.margins ?? [];
    w.u8(margins.length > 0 ? 2 : 1);
    w.varint(m.profile.points.length);
    let pt = 0;
    let pn = 0;
    for (const p of m.profile.points) {
      w.svarint(p.tMs - pt);
      w.svarint(p.needBytes - pn);
      pt = p.tMs;
      pn = p.needBytes;
    }
    if (margins.length > 0) {
      w.varint(margins.length);
      let pb = 0;
      for (const e of margins) {
        w.svarint(e.bytesPerSecond - pb);
        w.svarint(e.marginBytes);
        pb = e.bytesPerSecond;
      }
    }
  } else {
    w.u8(0);
  }
  return w.finish();
}

/**
 * Inverse of encodeManifestCanonical. Structural checks only (indexes in range, sizes consistent);
 * path safety is checked by the applier. Throws what `fail` builds on any malformed input.
 */
export function decodeManifestCanonical(buf: Uint8Array, fail: (detail: string, offset: number) => Error): Manifest {
  const r = new ByteReader(buf, fail);
  const formatVersion = r.varint();
  const algo = r.u8();
  if (algo !== 0) throw fail(`unknown chunking algorithm ${algo}`, r.pos);
  const chunking = { algorithm: 'fastcdc' as const, minSizeBytes: r.varint(), avgSizeBytes: r.varint(), maxSizeBytes: r.varint() };
  const nPacks = r.count(2);
  const packs = [];
  for (let i = 0; i < nPacks; i++) packs.push({ name: r.string(), sizeBytes: r.varint() });
  const nChunks = r.count(32 + 4);
  const chunks: ChunkEntry[] = new Array(nChunks);
  for (let i = 0; i < nChunks; i++) {
    chunks[i] = { hash: r.bytes(32).slice(), rawSizeBytes: 0, storedSizeBytes: 0, codec: 0, pack: 0, offset: 0 };
  }
  for (let i = 0; i < nChunks; i++) {
    const size = r.varint();
    if (size > CHUNK_MAX_BOUND_BYTES) throw fail(`chunk ${i} of ${size} bytes is over the limit`, r.pos);
    chunks[i].rawSizeBytes = size;
  }
  for (let i = 0; i < nChunks; i++) chunks[i].codec = r.u8();
  let prevPack = 0;
  let prevEnd = 0;
  for (let i = 0; i < nChunks; i++) {
    const c = chunks[i];
    c.pack = prevPack + r.svarint();
    if (c.pack !== prevPack) prevEnd = 0;
    c.offset = prevEnd + r.svarint();
    c.storedSizeBytes = c.rawSizeBytes + r.svarint();
    if (c.pack < 0 || (c.pack >= nPacks && nPacks > 0) || c.offset < 0 || c.storedSizeBytes < 0) {
      throw fail(`chunk ${i} has an invalid location`, r.pos);
    }
    prevPack = c.pack;
    prevEnd = c.offset + c.storedSizeBytes;
  }
  const nFiles = r.count(8);
  const files: FileEntry[] = [];
  let prevPath = '';
  for (let i = 0; i < nFiles; i++) {
    const common = r.varint();
    if (common > prevPath.length) throw fail(`file ${i} has an invalid path prefix`, r.pos);
    const path = prevPath.slice(0, common) + r.string();
    prevPath = path;
    const t = r.u8();
    const type = ENTRY_TYPES[t];
    if (type === undefined) throw fail(`file ${i} has unknown type ${t}`, r.pos);
    const mode = r.varint();
    const sizeBytes = r.varint();
    const shaLen = r.varint();
    if (shaLen !== 0 && shaLen !== 32) throw fail(`file ${i} has a hash of ${shaLen} bytes`, r.pos);
    const sha256 = r.bytes(shaLen).slice();
    const linkTarget = r.string();
    const n = r.count(1);
    const list: number[] = new Array(n);
    let prev = -1;
    let total = 0;
    for (let k = 0; k < n; k++) {
      const ci = prev + 1 + r.svarint();
      if (ci < 0 || ci >= nChunks) throw fail(`file ${path} refers to chunk ${ci} of ${nChunks}`, r.pos);
      list[k] = ci;
      total += chunks[ci].rawSizeBytes;
      prev = ci;
    }
    if (type === 'file' && (total !== sizeBytes || shaLen !== 32)) throw fail(`file ${path}: chunks do not add up to its size`, r.pos);
    if (type !== 'file' && n !== 0) throw fail(`entry ${path} of type ${type} has chunks`, r.pos);
    files.push({ path, type, mode, sizeBytes, sha256, linkTarget, chunks: list });
  }
  const m: Manifest = { formatVersion, chunking, files, chunks, packs };
  const hasProfile = r.u8();
  if (hasProfile === 1 || hasProfile === 2) {
    const n = r.count(2);
    const points = [];
    let pt = 0;
    let pn = 0;
    for (let i = 0; i < n; i++) {
      pt += r.svarint();
      pn += r.svarint();
      points.push({ tMs: pt, needBytes: pn });
    }
    m.profile = { points };
    if (hasProfile === 2) {
      const k = r.count(2);
      const margins = [];
      let pb = 0;
      for (let i = 0; i < k; i++) {
        pb += r.svarint();
        margins.push({ bytesPerSecond: pb, marginBytes: r.svarint() });
      }
      m.profile.margins = margins;
    }
  } else if (hasProfile !== 0) {
    throw fail('invalid profile flag', r.pos);
  }
  if (r.remaining !== 0) throw fail(`${r.remaining} trailing bytes`, r.pos);
  return m;
}

/** SHA-256 (hex) of the canonical encoding: the identity of a build inside patches. */
export function canonicalManifestId(encoded: Uint8Array): string {
  return createHash('sha256').update(encoded).digest('hex');
}
