// Path rules shared by the tar reader, the folder walker, the manifest decoder and the extractor.
// An entry path is relative, '/'-separated, without empty, '.' or '..' segments, without NUL or backslash.

/** Returns the normalised form of a raw archive path, or an error reason. Strips './' prefixes and a trailing '/'. */
export function normaliseEntryPath(raw: string): { path: string } | { reason: 'absolute-path' | 'path-escapes-root' | 'invalid-path' } {
  if (raw.includes('\0')) return { reason: 'invalid-path' };
  if (raw.startsWith('/') || /^[A-Za-z]:/.test(raw)) return { reason: 'absolute-path' };
  if (raw.includes('\\')) return { reason: 'invalid-path' };
  const out: string[] = [];
  for (const seg of raw.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return { reason: 'path-escapes-root' };
    out.push(seg);
  }
  return { path: out.join('/') };
}

/** True when `path` is already in normal form (used to validate decoded manifests). */
export function isNormalEntryPath(path: string): boolean {
  if (path === '') return false;
  const n = normaliseEntryPath(path);
  return 'path' in n && n.path === path;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/**
 * Resolves a symlink's target lexically against the link's folder. Returns the root-relative path ('' is the
 * root) or undefined when the target is absolute or climbs above the root.
 */
export function resolveLinkTarget(linkPath: string, target: string): string | undefined {
  if (target.startsWith('/') || target.includes('\0') || target === '') return undefined;
  const parts = parentOf(linkPath) === '' ? [] : parentOf(linkPath).split('/');
  for (const seg of target.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (parts.length === 0) return undefined;
      parts.pop();
    } else parts.push(seg);
  }
  return parts.join('/');
}

/**
 * Full resolution of a symlink inside a tree whose other symlinks are known (`symlinkTarget(path)` returns a
 * link's text or undefined). Following links that point to links, returns true when the final location climbs
 * above the root or is absolute. Loops give up after `maxHops` and count as not escaping (the OS refuses them).
 */
export function symlinkEscapesRoot(linkPath: string, symlinkTarget: (path: string) => string | undefined, maxHops: number): boolean {
  let hops = 0;
  const walk = (base: string[], target: string): string[] | null => {
    if (target.startsWith('/') || target === '') return null;
    let parts = base.slice();
    for (const seg of target.split('/')) {
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        if (parts.length === 0) return null;
        parts.pop();
        continue;
      }
      parts.push(seg);
      const next = symlinkTarget(parts.join('/'));
      if (next !== undefined) {
        if (++hops > maxHops) return parts;
        parts.pop();
        const r = walk(parts, next);
        if (r === null) return null;
        parts = r;
      }
    }
    return parts;
  };
  const target = symlinkTarget(linkPath);
  if (target === undefined) return false;
  const base = parentOf(linkPath) === '' ? [] : parentOf(linkPath).split('/');
  return walk(base, target) === null;
}
