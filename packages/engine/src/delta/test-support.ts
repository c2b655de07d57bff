// Test helpers for the delta format: list a folder as the tar writer's entries, collect streams, and
// hand-craft deltas (with a valid trailer) for hostile-input tests.
import { createHash } from 'node:crypto';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { TarWriteEntry } from '../tar/tar-writer.js';
import { DELTA_HEADER_BYTES, DELTA_MAGIC, REC_LITERAL, REC_REF, REC_TRAILER } from './constants.js';
import { encodeEntryRecord } from './make.js';

/** Files, folders and symlinks of `root` in byte order of names, parents first (as the CLI lists them). */
export async function listEntries(root: string, prefix = ''): Promise<TarWriteEntry[]> {
  const out: TarWriteEntry[] = [];
  const names = (await readdir(join(root, prefix))).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) {
    const rel = prefix ? `${prefix}/${name}` : name;
    const abs = join(root, rel);
    const st = await lstat(abs);
    const common = { name: rel, source: abs, mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) };
    if (st.isDirectory()) {
      out.push({ ...common, type: 'directory', size: 0 });
      out.push(...(await listEntries(root, rel)));
    } else if (st.isSymbolicLink()) out.push({ ...common, type: 'symlink', size: 0, linkname: await readlink(abs) });
    else if (st.isFile() && st.nlink === 1) out.push({ ...common, type: 'file', size: st.size });
  }
  return out;
}

export async function collect(stream: Readable | AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(parts);
}

/** Splits a buffer into pieces of `size` bytes, as a stream would deliver it. */
export async function* pieces(buf: Uint8Array, size = 7): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, Math.min(buf.length, i + size));
}

export function craftHeader(o: { tarSizeBytes: number; version?: number; min?: number; avg?: number; max?: number }): Buffer {
  const b = Buffer.alloc(DELTA_HEADER_BYTES);
  b.set(DELTA_MAGIC, 0);
  b.writeUInt16LE(o.version ?? 1, 4);
  b.writeUInt32LE(o.min ?? 16384, 8);
  b.writeUInt32LE(o.avg ?? 65536, 12);
  b.writeUInt32LE(o.max ?? 262144, 16);
  b[20] = 1;
  b.writeBigUInt64LE(BigInt(o.tarSizeBytes), 24);
  return b;
}

export function craftEntry(e: Partial<TarWriteEntry> & { name: string }): Buffer {
  return encodeEntryRecord({ type: 'file', source: '', size: 0, mode: 0o644, mtime: 0, ...e });
}

export function craftRef(hash: Uint8Array, rawLength: number): Buffer {
  const b = Buffer.alloc(37);
  b[0] = REC_REF;
  b.set(hash, 1);
  b.writeUInt32LE(rawLength, 33);
  return b;
}

export function craftLiteral(raw: Uint8Array, o: { hash?: Uint8Array; rawLength?: number; storedLength?: number; codec?: number } = {}): Buffer {
  const b = Buffer.alloc(42);
  b[0] = REC_LITERAL;
  b.set(o.hash ?? createHash('sha256').update(raw).digest(), 1);
  b.writeUInt32LE(o.rawLength ?? raw.length, 33);
  b[37] = o.codec ?? 0;
  b.writeUInt32LE(o.storedLength ?? raw.length, 38);
  return Buffer.concat([b, raw]);
}

/** Trailer with the given counts and a correct checksum over `body` + the trailer fields. */
export function sealDelta(body: Buffer, counts: { entries: number; refs: number; literals: number }): Buffer {
  const t = Buffer.alloc(13);
  t[0] = REC_TRAILER;
  t.writeUInt32LE(counts.entries, 1);
  t.writeUInt32LE(counts.refs, 5);
  t.writeUInt32LE(counts.literals, 9);
  const all = Buffer.concat([body, t]);
  return Buffer.concat([all, createHash('sha256').update(all).digest()]);
}
