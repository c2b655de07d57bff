// A lean streaming parser for (decompressed) tar bytes: ustar, GNU and PAX. It hands file content out as views
// of the read buffers (no copy), which is what makes it several times cheaper per entry than a stream-based
// parser. Understood: 512-byte headers with checksum, octal and base-256 numbers, the ustar prefix, GNU long
// names/link names ('L'/'K'), PAX per-entry ('x') and global ('g') records for path, linkpath and size.
import { TarError } from '../errors.js';
import type { InputEntry } from './input-entry.js';

const BLOCK = 512;
/** Largest PAX or GNU long-name payload we accept (tar bombs): far above any real path. */
const MAX_META_BYTES = 1024 * 1024;
/** All metadata entries (PAX, long names) before one entry together. */
const MAX_META_BYTES_PER_ENTRY = 4 * MAX_META_BYTES;

/** Typeflag → the type names tar-stream uses (kept so that error details stay the same). */
function typeName(flag: number): string {
  switch (flag) {
    case 0:
    case 0x30:
      return 'file';
    case 0x31:
      return 'link';
    case 0x32:
      return 'symlink';
    case 0x33:
      return 'character-device';
    case 0x34:
      return 'block-device';
    case 0x35:
      return 'directory';
    case 0x36:
      return 'fifo';
    case 0x37:
      return 'contiguous-file';
    default:
      return `typeflag-${String.fromCharCode(flag)}`;
  }
}

function mapType(name: string): InputEntry['type'] {
  switch (name) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'directory':
      return 'dir';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'hardlink';
    default:
      return 'other';
  }
}

/** Pulls exact byte counts out of an async sequence of buffers. */
class ByteQueue {
  private bufs: Uint8Array[] = [];
  private head = 0; // offset into bufs[0]
  private avail = 0;
  private ended = false;
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  /** Tries to have `n` bytes buffered; returns false at end of input with fewer. */
  async fill(n: number): Promise<boolean> {
    while (this.avail < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        break;
      }
      const b = r.value;
      if (b.length === 0) continue;
      this.bufs.push(b);
      this.avail += b.length;
    }
    return this.avail >= n;
  }

  get buffered(): number {
    return this.avail;
  }

  /** `n` (≤ buffered) bytes as one array: a view when they lie in one buffer, else a copy. */
  take(n: number): Uint8Array {
    const first = this.bufs[0];
    if (first.length - this.head >= n) {
      const v = first.subarray(this.head, this.head + n);
      this.advance(n);
      return v;
    }
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const b = this.bufs[0];
      const k = Math.min(n - done, b.length - this.head);
      out.set(b.subarray(this.head, this.head + k), done);
      done += k;
      this.advance(k);
    }
    return out;
  }

  /** Up to `n` (≥ 1, buffered ≥ 1) bytes as a view into one buffer. */
  takeSome(n: number): Uint8Array {
    const first = this.bufs[0];
    const k = Math.min(n, first.length - this.head);
    const v = first.subarray(this.head, this.head + k);
    this.advance(k);
    return v;
  }

  /** Drops `n` bytes (reading more input as needed); false when the input ends first. */
  async skip(n: number): Promise<boolean> {
    while (n > 0) {
      if (this.avail === 0 && !(await this.fill(1))) return false;
      const k = Math.min(n, this.bufs[0].length - this.head);
      this.advance(k);
      n -= k;
    }
    return true;
  }

  private advance(k: number): void {
    this.head += k;
    this.avail -= k;
    if (this.head === this.bufs[0].length) {
      this.bufs.shift();
      this.head = 0;
    }
  }
}

function cstring(b: Uint8Array, start: number, len: number): string {
  let end = start;
  const stop = start + len;
  while (end < stop && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('utf8');
}

/** Octal (NUL/space terminated) or GNU base-256 (high bit of the first byte set, positive only). */
function number(b: Uint8Array, start: number, len: number, field: string): number {
  if (b[start] & 0x80) {
    if (b[start] !== 0x80) throw new TarError('truncated', field, `tar header: unsupported base-256 ${field}`);
    let v = 0;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + b[i];
    if (!Number.isSafeInteger(v)) throw new TarError('truncated', field, `tar header: ${field} too large`);
    return v;
  }
  let i = start;
  const stop = start + len;
  while (i < stop && (b[i] === 0x20 || b[i] === 0)) i++;
  let v = 0;
  let digits = 0;
  for (; i < stop; i++) {
    const c = b[i];
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw new TarError('truncated', field, `invalid tar header: bad octal ${field}`);
    v = v * 8 + (c - 0x30);
    digits++;
  }
  return digits === 0 ? 0 : v;
}

function checksumOk(h: Uint8Array): boolean {
  const stored = number(h, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return stored === unsigned || stored === signed;
}

function isZeroBlock(h: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (h[i] !== 0) return false;
  return true;
}

/** PAX records "<len> <key>=<value>\n". Malformed records are refused (the archive is damaged). */
function parsePax(b: Uint8Array, into: Map<string, string>): void {
  const text = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  let pos = 0;
  while (pos < text.length) {
    if (text[pos] === 0) break; // NUL padding
    const sp = text.indexOf(0x20, pos);
    const len = sp < 0 ? NaN : Number(text.toString('latin1', pos, sp));
    if (!Number.isSafeInteger(len) || len <= 0 || pos + len > text.length || text[pos + len - 1] !== 0x0a) {
      throw new TarError('truncated', 'pax header', 'invalid tar header: malformed PAX record');
    }
    const rec = text.toString('utf8', sp + 1, pos + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) {
      const key = rec.slice(0, eq);
      const value = rec.slice(eq + 1);
      if (value === '') into.delete(key);
      else into.set(key, value);
    }
    pos += len;
  }
}

/**
 * Parses tar bytes into entries in archive order. A file entry's `content` yields views of the input buffers
 * that stay valid while the consumer holds them (buffers are never reused); it must be consumed or abandoned
 * before the next entry is requested (unread content is skipped). Errors: TarError 'truncated' when the input
 * is empty, ends inside an entry or a header is not a valid tar header.
 */
export async function* parseTar(bytes: AsyncIterable<Uint8Array>, archiveName: string): AsyncGenerator<InputEntry> {
  const q = new ByteQueue(bytes[Symbol.asyncIterator]());
  const globalPax = new Map<string, string>();
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  // Bytes of the metadata entries that describe the next entry: counted against the input's byte limit
  // with that entry, and bounded on their own, so that a stream of metadata alone cannot run forever.
  let metaBytes = 0;
  let sawHeader = false;
  const truncated = (what: string): TarError => new TarError('truncated', archiveName, `tar archive is truncated or not a tar: ${what}`);
  for (;;) {
    if (!(await q.fill(BLOCK))) {
      if (q.buffered === 0 && sawHeader) return; // ends after an entry without the end-of-archive blocks
      throw truncated(sawHeader ? 'unexpected end of data in a header' : 'no tar header');
    }
    const h = q.take(BLOCK).slice(); // a copy: header fields are decoded after more reads
    if (isZeroBlock(h)) return; // end of archive (an archive of only end blocks is empty); the rest is ignored
    if (!checksumOk(h)) throw truncated('invalid tar header (checksum)');
    sawHeader = true;
    const flag = h[156];
    let size = number(h, 124, 12, 'size');
    // Metadata entries: their payload describes the next entry.
    if (flag === 0x78 /* x */ || flag === 0x67 /* g */ || flag === 0x4c /* L */ || flag === 0x4b /* K */) {
      if (size > MAX_META_BYTES) throw truncated(`metadata entry of ${size} bytes`);
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      metaBytes += padded;
      if (metaBytes > MAX_META_BYTES_PER_ENTRY) throw truncated(`metadata entries of more than ${MAX_META_BYTES_PER_ENTRY} bytes before one entry`);
      if (!(await q.fill(padded))) throw truncated('unexpected end of data in a metadata entry');
      const payload = q.take(padded).subarray(0, size);
      if (flag === 0x78) parsePax(payload, pax);
      else if (flag === 0x67) parsePax(payload, globalPax);
      else {
        const s = cstring(payload, 0, payload.length);
        if (flag === 0x4c) longName = s;
        else longLink = s;
      }
      continue;
    }
    const ustar = h[257] === 0x75 && h[258] === 0x73 && h[259] === 0x74 && h[260] === 0x61 && h[261] === 0x72 && h[262] === 0;
    let name = cstring(h, 0, 100);
    if (ustar && h[345] !== 0) name = `${cstring(h, 345, 155)}/${name}`;
    let linkTarget = cstring(h, 157, 100);
    const attrs = globalPax.size > 0 ? new Map([...globalPax, ...pax]) : pax;
    name = attrs.get('path') ?? longName ?? name;
    linkTarget = attrs.get('linkpath') ?? longLink ?? linkTarget;
    const paxSize = attrs.get('size');
    if (paxSize !== undefined) {
      const v = Number(paxSize);
      if (!Number.isSafeInteger(v) || v < 0) throw truncated('invalid PAX size');
      size = v;
    }
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    // Pre-POSIX archives mark folders by a trailing slash on a regular-file entry.
    const detected = (flag === 0 || flag === 0x30) && name.endsWith('/') && size === 0 ? 'directory' : typeName(flag);
    const type = mapType(detected);
    const mode = number(h, 100, 8, 'mode');
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    // Hard links, symlinks and folders carry no data in practice; a size on them is skipped, like other readers do.
    const item: InputEntry = {
      name, type, detectedType: detected, mode, sizeBytes: type === 'file' ? size : 0,
      linkTarget: type === 'symlink' || type === 'hardlink' ? linkTarget : '',
      // What the archive holds for this entry besides a file's content: metadata, and a payload that is skipped.
      extraBytes: metaBytes + (type === 'file' ? 0 : padded),
    };
    metaBytes = 0;
    if (type !== 'file') {
      yield item;
      if (!(await q.skip(padded))) throw truncated('unexpected end of data');
      continue;
    }
    let left = size;
    item.content = {
      [Symbol.asyncIterator]: async function* () {
        while (left > 0) {
          if (q.buffered === 0 && !(await q.fill(1))) throw truncated(`unexpected end of data in ${JSON.stringify(name)}`);
          const v = q.takeSome(left);
          left -= v.length;
          yield v;
        }
      },
    };
    yield item;
    if (left > 0 && !(await q.skip(left))) throw truncated(`unexpected end of data in ${JSON.stringify(name)}`);
    if (!(await q.skip(padded - size))) throw truncated('unexpected end of data in padding');
  }
}
