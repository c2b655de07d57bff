// The common shape of entries coming from a tar archive or a folder, and the guard that turns them into
// safe, normalised manifest entries (or refuses them with TarError / LimitError).
import { LimitError, TarError } from '../errors.js';
import { DEFAULT_LIMITS, MAX_SYMLINK_HOPS, MODE_DIR, MODE_EXEC, MODE_FILE, MODE_SYMLINK, type InputLimits } from '../format/constants.js';
import { normaliseEntryPath, parentOf, resolveLinkTarget, symlinkEscapesRoot } from '../format/paths.js';
import type { EntryType } from '../format/types.js';

/** One entry as read from the input, before any checks. */
export interface InputEntry {
  /** Name as written in the input (tar name or folder-relative path). */
  name: string;
  /** Recognised type, or 'other' for devices, fifos, sockets ... (see `detectedType`). */
  type: EntryType | 'other';
  /** Type as named by the input (tar-stream type or fs kind), for error messages. */
  detectedType: string;
  mode: number;
  sizeBytes: number;
  /** symlink: link text; hardlink: the name of the linked entry as written in the input. */
  linkTarget: string;
  /**
   * Bytes the input holds for this entry besides a file's content (tar metadata entries before it, a
   * payload of a non-file entry that is skipped). Counted against `maxTotalBytes` like content, so that
   * no part of an expanded archive goes uncounted (decompression bombs). Folder inputs: absent.
   */
  extraBytes?: number;
  /** Regular files: the content. Must be fully consumed (or drained) before the next entry is requested. */
  content?: AsyncIterable<Uint8Array>;
}

/** A checked entry: normalised path and mode, hard links pointing at the original regular file. */
export interface AdmittedEntry {
  path: string;
  type: EntryType;
  mode: number;
  sizeBytes: number;
  linkTarget: string;
}

/**
 * Enforces the input rules for one build. Call `admit` for every entry in input order, then `finish`.
 * Refuses (TarError): absolute paths, '..' segments, NUL/backslash, entries beneath a symlink or a file,
 * duplicates (except repeated directories), symlinks whose target leaves the root (also through other
 * symlinks), hard links to missing / non-file entries, and any other entry type. Limits → LimitError.
 */
export class InputGuard {
  private readonly limits: InputLimits;
  private readonly kinds = new Map<string, EntryType | 'implicit-dir'>();
  private readonly symlinks = new Map<string, string>();
  private readonly hardlinkTargets = new Map<string, string>();
  private count = 0;
  private totalBytes = 0;

  constructor(limits?: Partial<InputLimits>) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Returns the admitted entry, or undefined for entries that carry nothing (the root folder, repeated folders). */
  admit(e: InputEntry): AdmittedEntry | undefined {
    if (e.extraBytes) this.addBytes(e.extraBytes, e.name);
    const norm = normaliseEntryPath(e.name);
    if (!('path' in norm)) throw new TarError(norm.reason, e.name, `${describe(norm.reason)}: ${JSON.stringify(e.name)}`);
    const path = norm.path;
    if (path === '') {
      if (e.type === 'dir') return undefined;
      throw new TarError('invalid-path', e.name, `entry ${JSON.stringify(e.name)} names the root folder`);
    }
    if (e.type === 'other') {
      throw new TarError('unsupported-entry-type', e.name, `unsupported entry type ${e.detectedType}: ${JSON.stringify(e.name)}`, {
        expected: 'file, directory, symlink or hard link',
        detected: e.detectedType,
      });
    }
    const pathBytes = Buffer.byteLength(path, 'utf8');
    if (pathBytes > this.limits.maxPathLength) {
      throw new LimitError('maxPathLength', pathBytes, this.limits.maxPathLength, `path of ${pathBytes} bytes exceeds the limit of ${this.limits.maxPathLength}: ${JSON.stringify(e.name.slice(0, 200))}`, e.name.slice(0, 200));
    }
    const existing = this.kinds.get(path);
    if (existing !== undefined) {
      if (e.type === 'dir' && (existing === 'dir' || existing === 'implicit-dir')) {
        this.kinds.set(path, 'dir');
        return existing === 'implicit-dir' ? this.count1({ path, type: 'dir', mode: MODE_DIR, sizeBytes: 0, linkTarget: '' }) : undefined;
      }
      throw new TarError('duplicate-entry', e.name, `duplicate or conflicting entry: ${JSON.stringify(path)}`);
    }
    for (let a = parentOf(path); a !== ''; a = parentOf(a)) {
      const kind = this.kinds.get(a);
      if (kind === undefined) this.kinds.set(a, 'implicit-dir');
      else if (kind === 'symlink') throw new TarError('path-through-symlink', e.name, `entry lies beneath the symlink ${JSON.stringify(a)}: ${JSON.stringify(path)}`);
      else if (kind !== 'dir' && kind !== 'implicit-dir') throw new TarError('invalid-path', e.name, `entry lies beneath the ${kind} ${JSON.stringify(a)}: ${JSON.stringify(path)}`);
      else break; // ancestors of a known folder were checked when it was admitted
    }
    let out: AdmittedEntry;
    switch (e.type) {
      case 'dir':
        out = { path, type: 'dir', mode: MODE_DIR, sizeBytes: 0, linkTarget: '' };
        break;
      case 'file': {
        this.addBytes(e.sizeBytes, path);
        out = { path, type: 'file', mode: (e.mode & 0o111) !== 0 ? MODE_EXEC : MODE_FILE, sizeBytes: e.sizeBytes, linkTarget: '' };
        break;
      }
      case 'symlink': {
        if (resolveLinkTarget(path, e.linkTarget) === undefined) {
          throw new TarError('symlink-escapes-root', e.name, `symlink points outside the root: ${JSON.stringify(path)} -> ${JSON.stringify(e.linkTarget)}`);
        }
        this.symlinks.set(path, e.linkTarget);
        out = { path, type: 'symlink', mode: MODE_SYMLINK, sizeBytes: 0, linkTarget: e.linkTarget };
        break;
      }
      case 'hardlink': {
        const t = normaliseEntryPath(e.linkTarget);
        if (!('path' in t)) throw new TarError('path-escapes-root', e.name, `hard link points outside the root: ${JSON.stringify(path)} -> ${JSON.stringify(e.linkTarget)}`);
        const original = this.hardlinkTargets.get(t.path) ?? t.path;
        if (this.kinds.get(original) !== 'file') {
          throw new TarError('hardlink-target-missing', e.name, `hard link to a missing or non-file entry: ${JSON.stringify(path)} -> ${JSON.stringify(e.linkTarget)}`);
        }
        this.hardlinkTargets.set(path, original);
        out = { path, type: 'hardlink', mode: MODE_FILE, sizeBytes: 0, linkTarget: original };
        break;
      }
    }
    this.kinds.set(path, e.type);
    return this.count1(out);
  }

  /** Counts bytes of the input; refuses (before they are read) once the total passes maxTotalBytes. */
  private addBytes(n: number, at: string): void {
    this.totalBytes += n;
    if (this.totalBytes > this.limits.maxTotalBytes) {
      throw new LimitError('maxTotalBytes', this.totalBytes, this.limits.maxTotalBytes, `input exceeds the limit of ${this.limits.maxTotalBytes} bytes at ${JSON.stringify(at)}`, at);
    }
  }

  private count1(out: AdmittedEntry): AdmittedEntry {
    if (++this.count > this.limits.maxFiles) {
      throw new LimitError('maxFiles', this.count, this.limits.maxFiles, `input has more than ${this.limits.maxFiles} entries (at ${JSON.stringify(out.path)})`, out.path);
    }
    return out;
  }

  /** Checks what needs the whole tree: symlinks that leave the root by way of other symlinks. */
  finish(): void {
    for (const path of this.symlinks.keys()) {
      if (symlinkEscapesRoot(path, (p) => this.symlinks.get(p), MAX_SYMLINK_HOPS)) {
        throw new TarError('symlink-escapes-root', path, `symlink resolves outside the root: ${JSON.stringify(path)} -> ${JSON.stringify(this.symlinks.get(path))}`);
      }
    }
  }
}

function describe(reason: string): string {
  switch (reason) {
    case 'absolute-path':
      return 'absolute path';
    case 'path-escapes-root':
      return 'path escapes the root';
    default:
      return 'invalid path';
  }
}
