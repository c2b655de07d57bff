// Deterministic random game folders for tests (small), and helpers to compare folders.
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, link, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** xorshift32: deterministic bytes from a seed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return this.next() % n;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) b.writeUInt32LE(this.next(), i);
    for (; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
  /** Compressible bytes: words from a small vocabulary. */
  text(n: number): Buffer {
    const words = ['alpha', 'beta', 'gamma', 'delta', 'level', 'mesh', 'texture', 'sound', '\n', ' '];
    const parts: string[] = [];
    let len = 0;
    while (len < n) {
      const w = words[this.int(words.length)];
      parts.push(w);
      len += w.length;
    }
    return Buffer.from(parts.join('')).subarray(0, n);
  }
}

export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `rockit-${prefix}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * Writes a random tree: nested folders, files of random sizes (including 0 bytes and multi-chunk files),
 * duplicated content, executable files, symlinks (relative, inside) and hard links.
 */
export async function writeRandomTree(root: string, seed: number, opts: { files?: number; maxFileBytes?: number } = {}): Promise<void> {
  const rng = new Rng(seed);
  const nFiles = opts.files ?? 20;
  const maxBytes = opts.maxFileBytes ?? 200_000;
  const dirs = ['', 'bin', 'data', 'data/levels', 'data/levels/deep', 'empty-dir', 'config'];
  for (const d of dirs) await mkdir(join(root, d), { recursive: true });
  const files: string[] = [];
  let previous: Buffer | undefined;
  for (let i = 0; i < nFiles; i++) {
    const dir = dirs[rng.int(dirs.length - 2) + (rng.int(2) === 0 ? 0 : 0)];
    const path = dir === '' ? `file-${i}.bin` : `${dir}/file-${i}.bin`;
    const kind = rng.int(6);
    let content: Buffer;
    if (kind === 0) content = Buffer.alloc(0);
    else if (kind === 1 && previous) content = previous; // duplicate content
    else if (kind === 2) content = rng.text(rng.int(maxBytes));
    else content = rng.bytes(rng.int(maxBytes));
    await writeFile(join(root, path), content);
    if (rng.int(4) === 0) await chmod(join(root, path), 0o755);
    else await chmod(join(root, path), 0o644);
    files.push(path);
    if (content.length > 0) previous = content;
  }
  await writeFile(join(root, 'bin/game'), Buffer.concat([rng.bytes(70_000), previous ?? Buffer.alloc(0)]));
  await chmod(join(root, 'bin/game'), 0o755);
  await symlink('../bin/game', join(root, 'config/game-link'));
  await symlink('levels', join(root, 'data/levels-link'));
  await symlink('does-not-exist', join(root, 'dangling'));
  await link(join(root, files[files.length - 1]), join(root, 'hardlinked.bin'));
}

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink';
  exec?: boolean;
  content?: string;
  target?: string;
  ino?: number;
}

/** A comparable description of a folder: path → type, exec bit, content hash/link target, hard link groups. */
export async function describeTree(root: string): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  const inodes = new Map<number, string>();
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort();
    for (const name of names) {
      const p = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(root, p));
      if (st.isDirectory()) {
        out[p] = { type: 'dir' };
        await walk(p);
      } else if (st.isSymbolicLink()) {
        out[p] = { type: 'symlink', target: await readlink(join(root, p)) };
      } else {
        const content = (await readFile(join(root, p))).toString('base64');
        const first = inodes.get(st.ino);
        out[p] = { type: 'file', exec: (st.mode & 0o100) !== 0, content: first ? `link:${first}` : content };
        if (!first && st.nlink > 1) inodes.set(st.ino, p);
      }
    }
  };
  await walk('');
  return out;
}
