// Laying out a build's entries in the install folder before (or while) its bytes arrive, and checking files
// against the manifest afterwards. Regular files are created at their final size (sparse), so that the game can
// open them at once and reads land in the right place while the rest streams in.
import { closeSync, fchmodSync, ftruncateSync, lstatSync, mkdirSync, openSync, truncateSync } from 'node:fs';
import { chmod, link, lstat, readlink, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFile, type FileEntry, type Manifest } from '@rockit/engine';
import { ClientError } from './errors.js';
import { STATE_DIR } from './state.js';

const parentOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');

/** Refuses a build that would write into the state folder. */
export function checkBuildPaths(m: Manifest): void {
  for (const f of m.files) {
    if (f.path === STATE_DIR || f.path.startsWith(`${STATE_DIR}/`)) throw new ClientError('release-invalid', `the build has an entry ${JSON.stringify(f.path)}, which is the launcher's own state folder`);
  }
}

/**
 * Creates folders, regular files at their final size (kept when they already have it), symlinks and hard links.
 * Returns the indexes of regular files that were (re)created, whose chunks must be fetched again.
 */
export async function layOut(dir: string, m: Manifest): Promise<number[]> {
  layOutDirs(dir, m);
  return layOutFiles(dir, m);
}

/** The build's folders (and `dir`): what layOutFiles and chunk writes need first. */
export function layOutDirs(dir: string, m: Manifest): void {
  const dirs = new Set<string>();
  for (const f of m.files) {
    if (f.type === 'dir') dirs.add(f.path);
    for (let p = parentOf(f.path); p !== ''; p = parentOf(p)) dirs.add(p);
  }
  mkdirSync(dir, { recursive: true });
  for (const d of [...dirs].sort()) mkdirSync(join(dir, d), { recursive: true });
}

/**
 * The build's files and links, after layOutDirs. With `growOnly` (a fresh install whose first chunk reads run
 * meanwhile): an existing regular file was created by a chunk write and is only extended to its size, never
 * removed or shortened, and the event loop is let through every few hundred files.
 */
export async function layOutFiles(dir: string, m: Manifest, opts: { growOnly?: boolean } = {}): Promise<number[]> {
  const recreated: number[] = [];
  const byPath = new Map(m.files.map((f) => [f.path, f]));
  // Synchronous calls: thousands of small files are laid out before anything else runs, and a sync call costs
  // microseconds where a promise through the thread pool costs tens (this is the launcher's start-up time).
  for (let fi = 0; fi < m.files.length; fi++) {
    const f = m.files[fi];
    if (f.type !== 'file') continue;
    const p = join(dir, f.path);
    // A fresh install: the file is new (one call less than looking first).
    if (opts.growOnly && fi % 256 === 255) await new Promise((r) => setImmediate(r));
    let fd = tryCreate(p, f.mode & 0o777);
    if (fd === undefined) {
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (st?.isFile() && st.size === f.sizeBytes) continue;
      if (opts.growOnly && st?.isFile()) {
        if (st.size < f.sizeBytes) truncateSync(p, f.sizeBytes);
        continue;
      }
      if (st) await rm(p, { recursive: true, force: true });
      fd = openSync(p, 'w', f.mode & 0o777);
    }
    try {
      if (f.sizeBytes > 0) ftruncateSync(fd, f.sizeBytes);
      fchmodSync(fd, f.mode & 0o777);
    } finally {
      closeSync(fd);
    }
    recreated.push(fi);
  }
  for (const f of m.files) {
    const p = join(dir, f.path);
    if (f.type === 'symlink') {
      const cur = await readlink(p).catch(() => undefined);
      if (cur === f.linkTarget) continue;
      await rm(p, { recursive: true, force: true });
      await symlink(f.linkTarget, p);
    } else if (f.type === 'hardlink') {
      const target = byPath.get(f.linkTarget);
      if (!target || target.type !== 'file') throw new ClientError('release-invalid', `hard link to a missing file: ${f.path}`);
      const [a, b] = await Promise.all([lstat(p).catch(() => undefined), lstat(join(dir, target.path))]);
      if (a && a.ino === b.ino && a.dev === b.dev) continue;
      await rm(p, { recursive: true, force: true });
      await link(join(dir, target.path), p);
    }
  }
  for (const d of m.files) if (d.type === 'dir') await chmod(join(dir, d.path), (d.mode & 0o777) | 0o700);
  return recreated;
}

/** Creates a new file (O_EXCL); undefined when something exists at the path. */
function tryCreate(p: string, mode: number): number | undefined {
  try {
    return openSync(p, 'wx', mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  }
}

export { hashFile };

export interface FileProblem {
  path: string;
  problem: 'missing' | 'damaged' | 'wrong-type';
}

/**
 * Checks every entry of the build in `dir` (whole-file SHA-256 of regular files, link texts, hard-link
 * identity). `onBytes` reports hashed bytes. Player's extra entries are not looked at.
 */
export async function checkFiles(dir: string, m: Manifest, onBytes?: (n: number) => void): Promise<FileProblem[]> {
  const problems: FileProblem[] = [];
  const byPath = new Map<string, FileEntry>(m.files.map((f) => [f.path, f]));
  for (const f of m.files) {
    const p = join(dir, f.path);
    const st = await lstat(p).catch(() => undefined);
    if (!st) {
      problems.push({ path: f.path, problem: 'missing' });
      continue;
    }
    if (f.type === 'dir') {
      if (!st.isDirectory()) problems.push({ path: f.path, problem: 'wrong-type' });
    } else if (f.type === 'symlink') {
      if (!st.isSymbolicLink() || (await readlink(p)) !== f.linkTarget) problems.push({ path: f.path, problem: 'wrong-type' });
    } else if (f.type === 'hardlink') {
      const t = await lstat(join(dir, byPath.get(f.linkTarget)?.path ?? f.linkTarget)).catch(() => undefined);
      if (!st.isFile() || !t || t.ino !== st.ino) problems.push({ path: f.path, problem: 'damaged' });
    } else {
      if (!st.isFile()) {
        problems.push({ path: f.path, problem: 'wrong-type' });
        continue;
      }
      const h = st.size === f.sizeBytes ? await hashFile(p) : undefined;
      onBytes?.(f.sizeBytes);
      if (!h || !h.equals(f.sha256)) problems.push({ path: f.path, problem: 'damaged' });
    }
  }
  return problems;
}
