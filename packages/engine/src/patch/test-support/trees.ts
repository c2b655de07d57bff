// Deterministic random game-like folders and edit scripts for patch tests.

import { createHash } from 'node:crypto';
import { chmod, link, lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { chunkLengths } from '../../chunker/fastcdc.js';
import { DEFAULT_CHUNKING } from '../../format/constants.js';
import type { ChunkEntry, FileEntry, Manifest } from '../../format/types.js';
import type { BuildSide } from '../side.js';

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.s = x;
    return x / 0x100000000;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) b.writeUInt32LE((this.next() * 0x100000000) >>> 0, i);
    for (; i < n; i++) b[i] = this.int(256);
    return b;
  }
  /** Text-like, compressible bytes. */
  text(n: number): Buffer {
    const words = ['alpha', 'beta', 'gamma', 'delta', 'level', 'mesh', 'texture', 'sound', '=', '\n', ' ', '42', 'true'];
    const parts: string[] = [];
    let len = 0;
    while (len < n) {
      const w = words[this.int(words.length)];
      parts.push(w);
      len += w.length;
    }
    return Buffer.from(parts.join('')).subarray(0, n);
  }
  pick<T>(xs: T[]): T {
    return xs[this.int(xs.length)];
  }
}

/** Writes a small game-like build: a binary, asset archives, configs, a symlink, a hard link. */
export async function makeTree(root: string, rng: Rng, scale = 1): Promise<void> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'data/levels'), { recursive: true });
  await mkdir(join(root, 'config'), { recursive: true });
  await writeFile(join(root, 'bin/game'), Buffer.concat([rng.bytes(Math.floor(120_000 * scale)), rng.text(40_000)]));
  await chmod(join(root, 'bin/game'), 0o755);
  for (let i = 0; i < 3; i++) await writeFile(join(root, `data/assets${i}.pak`), rng.bytes(Math.floor((150_000 + rng.int(250_000)) * scale)));
  for (let i = 0; i < 3; i++) await writeFile(join(root, `data/levels/l${i}.lvl`), rng.text(Math.floor((20_000 + rng.int(60_000)) * scale)));
  for (let i = 0; i < 4; i++) await writeFile(join(root, `config/c${i}.ini`), rng.text(200 + rng.int(2000)));
  await writeFile(join(root, 'empty.txt'), '');
  await symlink('bin/game', join(root, 'game-link'));
  await link(join(root, 'config/c0.ini'), join(root, 'config/c0-hard.ini'));
}

async function listFiles(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(root, rel))).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    const st = await lstat(join(root, p));
    if (st.isDirectory()) out.push(...(await listFiles(root, p)));
    else if (st.isFile() && st.nlink === 1) out.push(p);
  }
  return out;
}

export type EditKind = 'edit' | 'insert' | 'append' | 'truncate' | 'rename' | 'move' | 'delete' | 'add' | 'chmod' | 'symlink';
export const EDIT_KINDS: EditKind[] = ['edit', 'insert', 'append', 'truncate', 'rename', 'move', 'delete', 'add', 'chmod', 'symlink'];

/** Applies `count` random edits (or the given kinds) to the tree at `root`. Returns the kinds applied. */
export async function editTree(root: string, rng: Rng, kinds: EditKind[]): Promise<void> {
  let n = 0;
  for (const kind of kinds) {
    const files = await listFiles(root);
    const f = rng.pick(files);
    const abs = join(root, f);
    const data = await readFile(abs);
    switch (kind) {
      case 'edit': {
        const at = rng.int(Math.max(1, data.length));
        const patch = rng.bytes(1 + rng.int(64));
        patch.copy(data, at);
        await writeFile(abs, data);
        break;
      }
      case 'insert': {
        const at = rng.int(data.length + 1);
        await writeFile(abs, Buffer.concat([data.subarray(0, at), rng.bytes(1 + rng.int(30_000)), data.subarray(at)]));
        break;
      }
      case 'append':
        await writeFile(abs, Buffer.concat([data, rng.text(1 + rng.int(20_000))]));
        break;
      case 'truncate':
        await truncate(abs, rng.int(data.length + 1));
        break;
      case 'rename':
        await rename(abs, `${abs}.renamed${n}`);
        break;
      case 'move':
        await mkdir(join(root, 'moved'), { recursive: true });
        await rename(abs, join(root, 'moved', `${f.replace(/\//g, '_')}.${n}`));
        break;
      case 'delete':
        await unlink(abs);
        break;
      case 'add':
        await mkdir(join(root, 'added'), { recursive: true });
        await writeFile(join(root, `added/new${n}.bin`), Buffer.concat([rng.bytes(rng.int(100_000)), data.subarray(0, rng.int(data.length))]));
        break;
      case 'chmod': {
        const st = await lstat(abs);
        await chmod(abs, st.mode & 0o100 ? 0o644 : 0o755);
        break;
      }
      case 'symlink': {
        const l = join(root, 'game-link');
        await rm(l, { force: true });
        await symlink(f, l);
        await symlink(`../${f}`, join(root, 'config', `link${n}`)).catch(() => undefined);
        break;
      }
    }
    n++;
  }
}

/** A comparable description of a folder: type, exec bit, content hash, link target, hard-link groups. */
export async function snapshot(root: string): Promise<string[]> {
  const out: string[] = [];
  const inodes = new Map<number, string>();
  const walk = async (rel: string) => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(root, p));
      if (st.isDirectory()) {
        out.push(`d ${p}`);
        await walk(p);
      } else if (st.isSymbolicLink()) {
        out.push(`l ${p} -> ${await readlink(join(root, p))}`);
      } else {
        const h = createHash('sha256').update(await readFile(join(root, p))).digest('hex').slice(0, 16);
        const first = inodes.get(st.ino);
        if (st.nlink > 1 && !first) inodes.set(st.ino, p);
        out.push(`f ${p} ${st.mode & 0o111 ? 'x' : '-'} ${h}${first ? ` =${first}` : ''}`);
      }
    }
  };
  await walk('');
  return out;
}

export async function ensureDir(p: string): Promise<void> {
  await mkdir(dirname(p), { recursive: true });
}

/** An in-memory build side (no validation: tests use it to feed hostile manifests to the applier). */
export function memorySide(entries: Array<{ path: string; type: 'file' | 'dir' | 'symlink' | 'hardlink'; data?: Buffer; linkTarget?: string; mode?: number }>): BuildSide {
  const chunks: ChunkEntry[] = [];
  const bytes: Buffer[] = [];
  const byHash = new Map<string, number>();
  const files: FileEntry[] = entries.map((e) => {
    const list: number[] = [];
    if (e.type === 'file') {
      let p = 0;
      for (const len of chunkLengths(e.data ?? Buffer.alloc(0), { ...DEFAULT_CHUNKING })) {
        const piece = (e.data ?? Buffer.alloc(0)).subarray(p, p + len);
        p += len;
        const hash = createHash('sha256').update(piece).digest();
        let idx = byHash.get(hash.toString('hex'));
        if (idx === undefined) {
          idx = chunks.length;
          byHash.set(hash.toString('hex'), idx);
          chunks.push({ hash, rawSizeBytes: len, storedSizeBytes: len, codec: 0, pack: 0, offset: 0 });
          bytes.push(piece);
        }
        list.push(idx);
      }
    }
    return {
      path: e.path,
      type: e.type,
      mode: e.mode ?? (e.type === 'dir' ? 0o755 : 0o644),
      sizeBytes: e.type === 'file' ? (e.data?.length ?? 0) : 0,
      sha256: e.type === 'file' ? createHash('sha256').update(e.data ?? Buffer.alloc(0)).digest() : new Uint8Array(0),
      linkTarget: e.linkTarget ?? '',
      chunks: list,
    };
  });
  const manifest: Manifest = { formatVersion: 1, chunking: { ...DEFAULT_CHUNKING }, files, chunks, packs: [] };
  return { manifest, readChunk: async (i) => bytes[i], close: async () => {} };
}
