// Packs a folder picked in the browser into an uncompressed tar (the native build format, api.md §7.2)
// as a Blob made of the files' own Blobs: nothing is read or copied until the upload sends it.
// POSIX ustar, names over 100 bytes (or sizes over 8 GiB) carried by a PAX header.

export interface TarInput {
  /** Path inside the archive, `/`-separated, no leading slash. */
  path: string;
  blob: Blob;
  /** Modification time, ms. */
  lastModified: number;
}

const enc = new TextEncoder();

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, size: number, mtimeSec: number, type: '0' | '5' | 'x'): Uint8Array {
  const h = new Uint8Array(512);
  const put = (s: string | Uint8Array, off: number, len: number) => h.set((typeof s === 'string' ? enc.encode(s) : s).subarray(0, len), off);
  put(name, 0, 100);
  put(octal(type === '5' ? 0o755 : 0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(size < 8 ** 11 ? octal(size, 12) : octal(0, 12), 124, 12);
  put(octal(mtimeSec, 12), 136, 12);
  put('        ', 148, 8);
  put(type, 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(octal(sum, 7) + ' ', 148, 8);
  return h;
}

function pad(size: number): Uint8Array {
  const r = size % 512;
  return new Uint8Array(r === 0 ? 0 : 512 - r);
}

/** A PAX record `"<len> key=value\n"`, whose length counts itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = enc.encode(body).length;
  len += String(len).length;
  if (String(len).length !== String(len - String(len).length).length) len += 1;
  return `${len}${body}`;
}

function entry(parts: BlobPart[], name: string, size: number, mtimeSec: number, type: '0' | '5', content?: Blob): void {
  const nameBytes = enc.encode(name).length;
  if (nameBytes > 100 || size >= 8 ** 11) {
    const pax = enc.encode((nameBytes > 100 ? paxRecord('path', name) : '') + (size >= 8 ** 11 ? paxRecord('size', String(size)) : ''));
    parts.push(header('PaxHeader', pax.length, mtimeSec, 'x') as BlobPart, pax as BlobPart, pad(pax.length) as BlobPart);
  }
  parts.push(header(name.slice(0, 100), size, mtimeSec, type) as BlobPart);
  if (content) parts.push(content, pad(size) as BlobPart);
}

/**
 * The tar of `files` (paths relative to the game folder), with a directory entry before the files
 * of each folder, sorted by path; ends with the two zero blocks.
 */
export function packTar(files: TarInput[]): Blob {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: BlobPart[] = [];
  const dirs = new Set<string>();
  for (const f of sorted) {
    const segs = f.path.split('/').filter((s) => s !== '' && s !== '.' && s !== '..');
    if (segs.length === 0) continue;
    const mtime = Math.max(0, Math.floor(f.lastModified / 1000));
    for (let i = 1; i < segs.length; i++) {
      const d = `${segs.slice(0, i).join('/')}/`;
      if (!dirs.has(d)) {
        dirs.add(d);
        entry(parts, d, 0, mtime, '5');
      }
    }
    entry(parts, segs.join('/'), f.blob.size, mtime, '0', f.blob);
  }
  parts.push(new Uint8Array(1024) as BlobPart);
  return new Blob(parts, { type: 'application/x-tar' });
}

/** The files of a folder picked with `<input webkitdirectory>`, their paths without the folder's own name. */
export function folderFiles(list: FileList | File[]): TarInput[] {
  return Array.from(list).map((f) => {
    const rel = (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name;
    const i = rel.indexOf('/');
    return { path: i >= 0 ? rel.slice(i + 1) : rel, blob: f, lastModified: f.lastModified };
  });
}
