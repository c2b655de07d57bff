// The shape of B's folder for applyPatch: which entries are safe to create, which folders exist, the modes
// they get, and the fsyncs that make them durable (docs/FORMATS.md, "## Patch").

import { mkdir, open, readdir } from 'node:fs/promises';
import { MAX_SYMLINK_HOPS } from '../format/constants.js';
import { parentOf, symlinkEscapesRoot } from '../format/paths.js';
import type { FileEntry, Manifest } from '../format/types.js';
import { PatchInputError, UnsafePathError } from './errors.js';

/** A path is safe when relative, '/'-separated, without empty, '.' or '..' components or NUL. */
export function checkRelativePath(p: string): void {
  if (p === '' || p.startsWith('/') || p.includes('\\') || p.includes('\0')) throw new UnsafePathError(p, 'not a relative path');
  for (const part of p.split('/')) if (part === '' || part === '.' || part === '..') throw new UnsafePathError(p, 'bad path component');
}

/**
 * B's entries must stay inside the output folder: safe paths, unique, no entry beneath a file, a
 * symlink or a hard link of B (so nothing is ever written through a link), hard links to regular
 * files of B, symlinks that resolve inside the root even when followed through other symlinks of B.
 * A parent that is no entry of B is an implicit folder (tars without folder entries): the applier
 * creates it, as extract does. Throws UnsafePathError naming the offending entry.
 */
export function validateTarget(m: Manifest): void {
  const types = new Map<string, FileEntry['type']>();
  const symlinks = new Map<string, string>();
  for (const f of m.files) {
    checkRelativePath(f.path);
    if (types.has(f.path)) throw new UnsafePathError(f.path, 'duplicate path');
    types.set(f.path, f.type);
    if (f.type === 'symlink') symlinks.set(f.path, f.linkTarget);
  }
  // Folders (explicit or implicit) whose ancestors are known to be folders or implicit.
  const checked = new Set<string>();
  for (const f of m.files) {
    for (let p = parentOf(f.path); p !== '' && !checked.has(p); p = parentOf(p)) {
      const t = types.get(p);
      if (t !== undefined && t !== 'dir') throw new UnsafePathError(f.path, `lies beneath the ${t} ${p}`);
      checked.add(p);
    }
    if (f.type === 'hardlink') {
      checkRelativePath(f.linkTarget);
      if (types.get(f.linkTarget) !== 'file') throw new UnsafePathError(f.path, 'hard link to something that is not a file of the build');
    }
    if (f.type === 'symlink') {
      if (f.linkTarget.startsWith('/') || f.linkTarget === '') throw new UnsafePathError(f.path, 'absolute symlink');
      if (symlinkEscapesRoot(f.path, (q) => symlinks.get(q), MAX_SYMLINK_HOPS)) throw new UnsafePathError(f.path, 'symlink points outside the root');
    }
  }
}

/** A's files are only ever read: their paths must not leave A's folder. Throws UnsafePathError. */
export function validateBase(m: Manifest): void {
  for (const f of m.files) if (f.type === 'file') checkRelativePath(f.path);
}

/**
 * Permission bits applied to B's files: rwx for user, group and others only, as extract does (a
 * patch never creates setuid, setgid or sticky files).
 */
export const fileMode = (mode: number): number => mode & 0o777;
/** Folders additionally stay readable, writable and searchable by their owner (as extract does). */
export const dirMode = (mode: number): number => (mode & 0o777) | 0o700;

/** fsync of a file's data and inode, or of a folder's entries. */
export async function syncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Every folder B needs: its folder entries and the implicit parents of all entries, parents first. */
export function foldersOf(m: Manifest): string[] {
  const dirs = new Set<string>();
  for (const f of m.files) {
    if (f.type === 'dir') dirs.add(f.path);
    for (let p = parentOf(f.path); p !== '' && !dirs.has(p); p = parentOf(p)) dirs.add(p);
  }
  return [...dirs].sort();
}

/** Creates `dir` when missing. Throws PatchInputError when it holds anything. */
export async function prepareEmptyDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length > 0) throw new PatchInputError(`output folder is not empty: ${dir}`);
}
