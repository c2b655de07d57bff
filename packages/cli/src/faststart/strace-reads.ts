// Turns `strace -f -ttt -y -s 0` output into trace records: reads of files under a root folder, addressed by
// path and offset. Understood: read/readv (at the tracked position), pread64/preadv/preadv2 (explicit offset),
// lseek (its result is the new position), openat/open (position 0), file-backed mmap (a read of the mapped
// range). Positions are tracked per (fd, path): threads share them, and a forked child inherits the parent's.
import type { TraceRecord } from '@rockit/engine';

/** The strace arguments `rockit trace record` uses (before `-o <file> -- <cmd…>`). */
export const STRACE_ARGS = ['-f', '-qq', '-ttt', '-y', '-s', '0', '-e', 'trace=openat,open,read,pread64,readv,preadv,preadv2,lseek,mmap'];

export interface StraceReadsResult {
  records: TraceRecord[];
  /** Unix time (seconds, fractional) of the first traced line; 0 when none. */
  startUnixSeconds: number;
  /** Lines not understood (kept out of the trace). */
  skippedLines: number;
}

const LINE = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/;
const CALL = /^(\w+)\((.*)\)\s+=\s+(-?\d+|0x[0-9a-f]+)(?:<(.*)>)?(?:\s.*)?$/;
const FD_PATH = /^(\d+)<(.*)>$/;

function num(s: string | undefined): number {
  if (s === undefined) return Number.NaN;
  const v = s.startsWith('0x') ? parseInt(s.slice(2), 16) : Number(s);
  return Number.isSafeInteger(v) ? v : Number.NaN;
}

/** Splits an argument list at top-level ", " (outside quotes, brackets and braces). */
function splitArgs(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '[' || c === '{' || c === '(') depth++;
    else if (c === ']' || c === '}' || c === ')') depth--;
    else if (c === ',' && depth === 0 && s[i + 1] === ' ') {
      out.push(s.slice(start, i));
      start = i + 2;
      i++;
    }
  }
  out.push(s.slice(start));
  return out;
}

/**
 * Collects reads from strace lines. `toRelative(absPath)` returns the path relative to the root ('/'-separated)
 * or null for files outside it; `fileSize(rel)` (optional) clips mmap ranges to the file.
 */
export class StraceReads {
  private readonly positions = new Map<string, number>();
  private readonly pending = new Map<string, string>();
  private readonly records: TraceRecord[] = [];
  private start = -1;
  private skipped = 0;

  constructor(private readonly toRelative: (abs: string) => string | null) {}

  line(raw: string): void {
    const m = LINE.exec(raw.trimEnd());
    if (!m) {
      if (raw.trim() !== '') this.skipped++;
      return;
    }
    const [, pid, ts, rest0] = m;
    let rest = rest0;
    if (rest.endsWith('<unfinished ...>')) {
      this.pending.set(pid, rest.slice(0, -'<unfinished ...>'.length).trimEnd());
      return;
    }
    const resumed = /^<\.\.\. (\w+) resumed>\s?(.*)$/.exec(rest);
    if (resumed) {
      const head = this.pending.get(pid);
      this.pending.delete(pid);
      if (head === undefined) {
        this.skipped++;
        return;
      }
      const tail = resumed[2];
      rest = head + (head.endsWith('(') || tail.startsWith(')') ? '' : ', ') + tail;
    }
    const call = CALL.exec(rest);
    if (!call) {
      if (!rest.startsWith('+++') && !rest.startsWith('---')) this.skipped++;
      return;
    }
    const seconds = Number(ts);
    if (this.start < 0) this.start = seconds;
    const tMs = Math.max(0, Math.round((seconds - this.start) * 1000));
    const [, name, argText, retText, retPath] = call;
    const ret = num(retText);
    if (name === 'openat' || name === 'open') {
      if (ret >= 0 && retPath !== undefined) this.positions.set(`${ret}:${retPath}`, 0);
      return;
    }
    const args = splitArgs(argText);
    if (name === 'mmap') {
      const fd = FD_PATH.exec(args[4] ?? '');
      const len = num(args[1]);
      const off = num(args[5]);
      if (fd && ret !== -1 && len > 0 && off >= 0) this.add(tMs, fd[2], off, len);
      return;
    }
    const fd = FD_PATH.exec(args[0] ?? '');
    if (!fd) return;
    const key = `${fd[1]}:${fd[2]}`;
    const pos = this.positions.get(key) ?? 0;
    switch (name) {
      case 'lseek':
        if (ret >= 0) this.positions.set(key, ret);
        return;
      case 'read':
      case 'readv':
        if (ret > 0) {
          this.add(tMs, fd[2], pos, ret);
          this.positions.set(key, pos + ret);
        }
        return;
      case 'pread64':
      case 'preadv': {
        const off = num(args[args.length - 1]);
        if (ret > 0 && off >= 0) this.add(tMs, fd[2], off, ret);
        return;
      }
      case 'preadv2': {
        const off = num(args[3]);
        if (ret > 0) {
          if (off >= 0) this.add(tMs, fd[2], off, ret);
          else {
            this.add(tMs, fd[2], pos, ret); // offset −1: the current position, advanced
            this.positions.set(key, pos + ret);
          }
        }
        return;
      }
      default:
        return;
    }
  }

  private add(tMs: number, abs: string, offsetBytes: number, lengthBytes: number): void {
    const path = this.toRelative(abs);
    if (path === null) return;
    this.records.push({ tMs, path, offsetBytes, lengthBytes });
  }

  /** Records so far (time order), with ranges clipped by `fileSize` (mmap maps whole pages past the end). */
  finish(fileSize?: (rel: string) => number | undefined): StraceReadsResult {
    const records: TraceRecord[] = [];
    for (const r of this.records) {
      const size = fileSize?.(r.path);
      if (size === undefined) {
        records.push(r);
        continue;
      }
      if (r.offsetBytes >= size) continue;
      records.push({ ...r, lengthBytes: Math.min(r.lengthBytes, size - r.offsetBytes) });
    }
    return { records, startUnixSeconds: this.start < 0 ? 0 : this.start, skippedLines: this.skipped };
  }
}
