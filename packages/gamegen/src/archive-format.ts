// The generated packed-asset archive ("GPAK"), shaped like real game pak files: a fixed header,
// aligned asset payloads, and a table of contents at the end. Sessions read it back to aim their
// reads at real asset boundaries.

import { open } from 'node:fs/promises';

export const GPAK_MAGIC = 'GPAK';
export const GPAK_VERSION = 1;
export const GPAK_HEADER_BYTES = 32;
/** Payload alignment; the gap is zero padding. */
export const GPAK_ALIGN_BYTES = 512;
/** Refuse a TOC larger than this when reading (a foreign or damaged file). */
const MAX_TOC_BYTES = 64 * 1024 * 1024;

export interface GpakTocEntry {
  name: string;
  offsetBytes: number;
  sizeBytes: number;
  kindTag: number;
}

export function alignUp(n: number, a: number = GPAK_ALIGN_BYTES): number {
  return Math.ceil(n / a) * a;
}

/** Serialized header: magic, version u32, count u32, alignment u32, tocOffset u64, tocBytes u64 (little-endian). */
export function gpakHeader(count: number, tocOffset: number, tocBytes: number): Uint8Array {
  const b = new Uint8Array(GPAK_HEADER_BYTES);
  const v = new DataView(b.buffer);
  b.set(Buffer.from(GPAK_MAGIC, 'latin1'), 0);
  v.setUint32(4, GPAK_VERSION, true);
  v.setUint32(8, count, true);
  v.setUint32(12, GPAK_ALIGN_BYTES, true);
  v.setBigUint64(16, BigInt(tocOffset), true);
  v.setBigUint64(24, BigInt(tocBytes), true);
  return b;
}

/** Serialized TOC: per entry u16 name length, name, u64 offset, u64 size, u32 kind tag. */
export function gpakToc(entries: readonly GpakTocEntry[]): Uint8Array {
  const names = entries.map((e) => Buffer.from(e.name, 'utf8'));
  const size = names.reduce((s, n) => s + 2 + n.length + 20, 0);
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  let p = 0;
  entries.forEach((e, i) => {
    v.setUint16(p, names[i].length, true);
    b.set(names[i], p + 2);
    p += 2 + names[i].length;
    v.setBigUint64(p, BigInt(e.offsetBytes), true);
    v.setBigUint64(p + 8, BigInt(e.sizeBytes), true);
    v.setUint32(p + 16, e.kindTag, true);
    p += 20;
  });
  return b;
}

/** TOC size without building it. */
export function gpakTocBytes(names: readonly string[]): number {
  return names.reduce((s, n) => s + 2 + Buffer.byteLength(n, 'utf8') + 20, 0);
}

/**
 * Reads the TOC of a GPAK file. Returns null when the file is not a well-formed GPAK (the caller then
 * treats it as opaque data); never throws for bad content, only for I/O errors.
 */
export async function readGpakToc(path: string): Promise<{ headerBytes: number; tocOffset: number; tocBytes: number; entries: GpakTocEntry[] } | null> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size < GPAK_HEADER_BYTES) return null;
    const head = Buffer.alloc(GPAK_HEADER_BYTES);
    await fh.read(head, 0, GPAK_HEADER_BYTES, 0);
    if (head.toString('latin1', 0, 4) !== GPAK_MAGIC || head.readUInt32LE(4) !== GPAK_VERSION) return null;
    const count = head.readUInt32LE(8);
    const tocOffset = Number(head.readBigUInt64LE(16));
    const tocBytes = Number(head.readBigUInt64LE(24));
    if (tocBytes > MAX_TOC_BYTES || tocOffset + tocBytes > size || tocOffset < GPAK_HEADER_BYTES) return null;
    const toc = Buffer.alloc(tocBytes);
    await fh.read(toc, 0, tocBytes, tocOffset);
    const entries: GpakTocEntry[] = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 2 > tocBytes) return null;
      const n = toc.readUInt16LE(p);
      if (p + 2 + n + 20 > tocBytes) return null;
      const name = toc.toString('utf8', p + 2, p + 2 + n);
      p += 2 + n;
      const offsetBytes = Number(toc.readBigUInt64LE(p));
      const sizeBytes = Number(toc.readBigUInt64LE(p + 8));
      const kindTag = toc.readUInt32LE(p + 16);
      p += 20;
      if (offsetBytes + sizeBytes > tocOffset) return null;
      entries.push({ name, offsetBytes, sizeBytes, kindTag });
    }
    return { headerBytes: GPAK_HEADER_BYTES, tocOffset, tocBytes, entries };
  } finally {
    await fh.close();
  }
}
