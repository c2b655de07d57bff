// The engine's one tar writer: uncompressed POSIX tar (ustar, with pax records where ustar runs
// out: paths over 255 bytes, link targets over 100 bytes, files of 8 GiB and more).
//
// Invariants:
// - The archive's exact size is known before a byte is read (`tarSize`), because an upload is a
//   PUT with a Content-Length; headers are encoded by the same function for sizing and streaming.
// - Memory stays bounded: one read buffer at a time, never a whole file.
// - The output is a pure function of the entries and the file contents: entries in the given
//   order, owner 0/0 without names, mode and mtime (whole seconds) as given.
// - If a file changes size between listing and streaming the stream fails (a tar that silently
//   disagrees with its Content-Length, or with the build on disk, must never be published).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';

const BLOCK = 512;
const READ_CHUNK = 256 * 1024;
/** Largest value of an 11-digit octal field: 8 GiB - 1 for sizes. */
const MAX_OCTAL_11 = 0o77777777777;

export type TarWriteEntryType = 'file' | 'directory' | 'symlink';

/** One entry to archive. */
export interface TarWriteEntry {
  /** Path inside the archive, '/'-separated, relative, no trailing slash. */
  name: string;
  type: TarWriteEntryType;
  /** Path on disk (read for files only). */
  source: string;
  /** Bytes of content (0 for directories and symlinks). */
  size: number;
  /** Permission bits (& 0o7777). */
  mode: number;
  /** Modification time, whole UNIX seconds. */
  mtime: number;
  /** Target of a symlink, as stored on disk. */
  linkname?: string;
}

function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/** Exact byte length of the archive `packTar` streams for these entries. */
export function tarSize(entries: readonly TarWriteEntry[]): number {
  let total = 2 * BLOCK; // end-of-archive marker
  for (const e of entries) total += encodeTarHeader(e).length + e.size + padding(e.size);
  return total;
}

/**
 * Streams the archive: for each entry its header block(s) and, for files, the content padded to
 * 512 bytes; then two zero blocks. Fails if a file is shorter or longer than when it was listed.
 * `onContentBytes` is told every piece of file content read (for progress).
 */
export function packTar(entries: readonly TarWriteEntry[], onContentBytes?: (n: number) => void): Readable {
  return Readable.from(generateTar(entries, onContentBytes), { objectMode: false });
}

async function* generateTar(entries: readonly TarWriteEntry[], onContentBytes?: (n: number) => void): AsyncGenerator<Buffer> {
  for (const e of entries) {
    yield encodeTarHeader(e);
    if (e.type !== 'file') continue;
    const handle = await fs.open(e.source, 'r');
    try {
      let left = e.size;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
        const { bytesRead } = await handle.read(buf, 0, buf.length, e.size - left);
        if (bytesRead === 0) throw new Error(`${e.source} shrank while being archived (listed ${e.size} bytes)`);
        left -= bytesRead;
        onContentBytes?.(bytesRead);
        yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
      }
      const st = await handle.stat();
      if (st.size !== e.size) throw new Error(`${e.source} changed size while being archived (${e.size} -> ${st.size} bytes)`);
    } finally {
      await handle.close();
    }
    const pad = padding(e.size);
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(2 * BLOCK);
}

/** Header block(s) of one entry: an optional pax header ('x') with its records, then the ustar block. */
export function encodeTarHeader(e: TarWriteEntry): Buffer {
  const name = e.type === 'directory' ? `${e.name}/` : e.name;
  const pax: [string, string][] = [];
  let nameField = name;
  let prefixField = '';
  if (Buffer.byteLength(name) > 100) {
    const split = splitUstarName(name);
    if (split) [prefixField, nameField] = split;
    else {
      pax.push(['path', name]);
      nameField = truncateUtf8(name, 100);
    }
  }
  let linkField = e.linkname ?? '';
  if (Buffer.byteLength(linkField) > 100) {
    pax.push(['linkpath', linkField]);
    linkField = truncateUtf8(linkField, 100);
  }
  if (e.size > MAX_OCTAL_11) pax.push(['size', String(e.size)]);

  const ustar = ustarBlock({
    name: nameField,
    prefix: prefixField,
    mode: e.mode,
    size: e.type === 'file' ? e.size : 0,
    mtime: e.mtime,
    typeflag: e.type === 'file' ? '0' : e.type === 'directory' ? '5' : '2',
    linkname: linkField,
  });
  if (pax.length === 0) return ustar;
  const body = Buffer.from(pax.map(([k, v]) => paxRecord(k, v)).join(''), 'utf8');
  const paxHeader = ustarBlock({
    name: truncateUtf8(`PaxHeader/${path.posix.basename(name)}`, 100),
    prefix: '',
    mode: 0o644,
    size: body.length,
    mtime: e.mtime,
    typeflag: 'x',
    linkname: '',
  });
  return Buffer.concat([paxHeader, body, Buffer.alloc(padding(body.length)), ustar]);
}

/** A pax record "<len> <key>=<value>\n" whose decimal length counts itself. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  const restBytes = Buffer.byteLength(rest);
  let len = restBytes + String(restBytes).length;
  if (String(len).length + restBytes !== len) len = restBytes + String(len).length;
  return `${len}${rest}`;
}

/** Splits a long path at a '/' into ustar prefix (≤155 bytes) and name (≤100 bytes), or null. */
function splitUstarName(name: string): [string, string] | null {
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length > 0) return [prefix, rest];
    if (Buffer.byteLength(prefix) > 155) return null;
  }
  return null;
}

function truncateUtf8(s: string, maxBytes: number): string {
  let out = s;
  while (Buffer.byteLength(out) > maxBytes) out = out.slice(0, -1);
  return out;
}

interface UstarFields {
  name: string;
  prefix: string;
  mode: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
}

function ustarBlock(f: UstarFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(f.name, 0, 100, 'utf8');
  writeOctal(b, 100, 8, f.mode);
  writeOctal(b, 108, 8, 0); // uid
  writeOctal(b, 116, 8, 0); // gid
  if (f.size > MAX_OCTAL_11) writeBase256(b, 124, 12, f.size);
  else writeOctal(b, 124, 12, f.size);
  writeOctal(b, 136, 12, Math.min(f.mtime, MAX_OCTAL_11));
  b.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  b.write(f.typeflag, 156, 1, 'ascii');
  b.write(f.linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'binary');
  writeOctal(b, 329, 8, 0); // devmajor
  writeOctal(b, 337, 8, 0); // devminor
  b.write(f.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  b.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 8, 'binary');
  return b;
}

/** Zero-padded octal in `width-1` digits plus a NUL. */
function writeOctal(b: Buffer, offset: number, width: number, value: number): void {
  b.write(value.toString(8).padStart(width - 1, '0') + '\u0000', offset, width, 'binary');
}

/** GNU base-256 (first byte 0x80), for sizes past the octal field; pax `size` says it too. */
function writeBase256(b: Buffer, offset: number, width: number, value: number): void {
  let v = BigInt(value);
  for (let i = offset + width - 1; i > offset; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  b[offset] = 0x80;
}

