// A read-only FUSE view of an install while it streams (Linux, libfuse2 through fuse-native): the build's
// entries from its manifest, and reads that block until their chunks are present (asked for with priority
// through Installation.ensure), then served from the install folder. An unmodified game can run in the mount
// from *ready to play* on. Loaded on demand: the rest of the library works without libfuse.
import { closeSync, openSync, readSync } from 'node:fs';
import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileEntry } from '@rockit/engine';
import { ClientError } from './errors.js';
import type { Installation } from './install.js';

export interface Mount {
  mountPoint: string;
  /** Reads served and how many of them had to wait for chunks (stalls) and for how long. */
  stats: { reads: number; stalls: number; stallMs: number };
  unmount(): Promise<void>;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/**
 * Mounts `inst` at `mountPoint` (a new temporary folder when omitted). Errors: ClientError 'invalid-argument'
 * when fuse-native cannot be loaded or the mount fails (no /dev/fuse, no fusermount, not Linux).
 */
export async function mountInstall(inst: Installation, mountPoint?: string): Promise<Mount> {
  let Fuse: typeof import('fuse-native').default;
  try {
    Fuse = (await import('fuse-native')).default;
  } catch (err) {
    throw new ClientError('invalid-argument', `FUSE is not available (fuse-native: ${(err as Error).message}); on Debian: apt-get install libfuse2 fuse3`);
  }
  const m = inst.manifest;
  const made = mountPoint === undefined;
  const mnt = mountPoint ?? (await mkdtemp(join(tmpdir(), 'rockit-play-')));
  const entries = new Map<string, FileEntry>(m.files.map((f) => [`/${f.path}`, f]));
  const children = new Map<string, string[]>([['/', []]]);
  const addChild = (parent: string, name: string) => {
    const list = children.get(parent) ?? [];
    if (!list.includes(name)) list.push(name);
    children.set(parent, list);
  };
  for (const f of m.files) {
    const parts = f.path.split('/');
    for (let i = 0; i < parts.length; i++) {
      const parent = i === 0 ? '/' : `/${parts.slice(0, i).join('/')}`;
      addChild(parent, parts[i]);
      if (i < parts.length - 1) children.set(`/${parts.slice(0, i + 1).join('/')}`, children.get(`/${parts.slice(0, i + 1).join('/')}`) ?? []);
    }
    if (f.type === 'dir') children.set(`/${f.path}`, children.get(`/${f.path}`) ?? []);
  }
  const now = new Date();
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const target = (f: FileEntry): FileEntry => (f.type === 'hardlink' ? (entries.get(`/${f.linkTarget}`) ?? f) : f);
  const stats = { reads: 0, stalls: 0, stallMs: 0 };
  const fds = new Map<number, { fd: number; path: string }>();
  let nextFd = 1;
  const ops = {
    readdir: (p: string, cb: (code: number, names?: string[]) => void) => {
      const list = children.get(p);
      if (!list) return cb(Fuse.ENOENT);
      cb(0, list);
    },
    getattr: (p: string, cb: (code: number, stat?: object) => void) => {
      const base = { mtime: now, atime: now, ctime: now, uid, gid };
      if (children.has(p) && !entries.has(p)) return cb(0, { ...base, nlink: 2, size: 4096, mode: S_IFDIR | 0o555 });
      const f = entries.get(p);
      if (!f) return cb(Fuse.ENOENT);
      if (f.type === 'dir') return cb(0, { ...base, nlink: 2, size: 4096, mode: S_IFDIR | 0o555 });
      if (f.type === 'symlink') return cb(0, { ...base, nlink: 1, size: Buffer.byteLength(f.linkTarget), mode: S_IFLNK | 0o777 });
      const t = target(f);
      return cb(0, { ...base, nlink: 1, size: t.sizeBytes, mode: S_IFREG | (t.mode & 0o555) });
    },
    readlink: (p: string, cb: (code: number, target?: string) => void) => {
      const f = entries.get(p);
      if (!f || f.type !== 'symlink') return cb(Fuse.EINVAL);
      cb(0, f.linkTarget);
    },
    open: (p: string, flags: number, cb: (code: number, fd?: number) => void) => {
      const f = entries.get(p);
      if (!f || (f.type !== 'file' && f.type !== 'hardlink')) return cb(Fuse.ENOENT);
      if ((flags & 3) !== 0) return cb(Fuse.EROFS);
      const t = target(f);
      try {
        const fd = openSync(join(inst.dir, t.path), 'r');
        const h = nextFd++;
        fds.set(h, { fd, path: t.path });
        cb(0, h);
      } catch {
        cb(Fuse.EIO);
      }
    },
    release: (_p: string, h: number, cb: (code: number) => void) => {
      const o = fds.get(h);
      if (o) closeSync(o.fd);
      fds.delete(h);
      cb(0);
    },
    read: (_p: string, h: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => {
      const o = fds.get(h);
      if (!o) return cb(Fuse.EIO);
      stats.reads++;
      const serve = () => {
        try {
          cb(readSync(o.fd, buf, 0, len, pos));
        } catch {
          cb(Fuse.EIO);
        }
      };
      if (inst.has(o.path, pos, len)) return serve();
      const t0 = performance.now();
      inst.ensure(o.path, pos, len).then(
        () => {
          stats.stalls++;
          stats.stallMs += performance.now() - t0;
          serve();
        },
        () => cb(Fuse.EIO),
      );
    },
  };
  const fuse = new Fuse(mnt, ops, { force: true, displayFolder: 'rockit' });
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(new ClientError('invalid-argument', `cannot mount ${mnt}: ${err.message}`)) : resolve())));
  let mounted = true;
  return {
    mountPoint: mnt,
    stats,
    async unmount() {
      if (!mounted) return;
      mounted = false;
      await new Promise<void>((resolve) => fuse.unmount(() => resolve()));
      for (const o of fds.values()) closeSync(o.fd);
      fds.clear();
      if (made) await rmdir(mnt).catch(() => undefined);
    },
  };
}
