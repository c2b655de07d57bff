// A minimal deterministic ustar writer for generated builds: regular files and directories only,
// fixed owner and mtime so the same folder always gives the same tar bytes.

import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const BLOCK = 512;
/** Fixed mtime of every entry (2026-01-01T00:00:00Z): tar bytes depend on content only. */
export const TAR_MTIME_UNIX_SECONDS = 1_767_225_600;

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, mode: number, size: number, type: '0' | '5'): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const put = (s: string, off: number, len: number) => {
    const b = Buffer.from(s, 'utf8');
    if (b.length > len) throw new Error(`tar field too long: ${s}`);
    h.set(b, off);
  };
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new Error(`path too long for ustar: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  if (size >= 8 ** 11) throw new Error(`file too large for ustar: ${name}`);
  put(base, 0, 100);
  put(octal(mode, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(TAR_MTIME_UNIX_SECONDS, 12), 136, 12);
  put('        ', 148, 8);
  put(type, 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put(prefix, 345, 155);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

export interface TarEntry {
  /** Relative '/'-separated path. */
  path: string;
  mode: number;
  sizeBytes: number;
}

/**
 * Writes `tarPath` holding the given files of folder `root` (and their parent directories, each
 * once, before their first file). Entries go in the given order. Streams with a 1 MiB buffer.
 */
export function writeTar(root: string, files: readonly TarEntry[], tarPath: string, onBytes: (n: number) => void = () => {}): void {
  const out = openSync(tarPath, 'w');
  const buf = Buffer.alloc(1024 * 1024);
  const dirs = new Set<string>();
  try {
    for (const f of files) {
      const parts = f.path.split('/');
      for (let i = 1; i < parts.length; i++) {
        const d = parts.slice(0, i).join('/') + '/';
        if (!dirs.has(d)) {
          dirs.add(d);
          writeSync(out, header(d, 0o755, 0, '5'));
        }
      }
      writeSync(out, header(f.path, f.mode, f.sizeBytes, '0'));
      const fd = openSync(join(root, ...parts), 'r');
      let left = f.sizeBytes;
      try {
        while (left > 0) {
          const n = readSync(fd, buf, 0, Math.min(buf.length, left), null);
          if (n === 0) throw new Error(`file shrank while writing tar: ${f.path}`);
          writeSync(out, buf, 0, n);
          left -= n;
          onBytes(n);
        }
      } finally {
        closeSync(fd);
      }
      const pad = (BLOCK - (f.sizeBytes % BLOCK)) % BLOCK;
      if (pad) writeSync(out, new Uint8Array(pad));
    }
    writeSync(out, new Uint8Array(BLOCK * 2));
  } finally {
    closeSync(out);
  }
}
