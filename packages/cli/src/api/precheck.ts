// Checks before a push sends a byte (issue 13 item 6): a folder or tar the server would refuse is
// refused here, naming the user's path, so no build id, no task and no upload are spent on it.
// The entries go through the engine's one entry validation (InputGuard), as mkraw will do.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputGuard, detectCompression, readTarEntries, type InputEntry, type TarWriteEntry } from '@rockit/engine';

/** Name of the ignore file in a pushed folder's root (one pattern a line, `#` comments); never sent. */
export const IGNORE_FILE = '.rockitignore';

/**
 * A matcher for butler-like ignore patterns: `*` (within a name), `**` (across folders), `?`. A
 * pattern without `/` matches an entry's name at any depth; one with `/` matches the path from the
 * folder's root (a leading `/` is allowed). An ignored folder takes everything in it along.
 */
export function ignoreMatcher(patterns: readonly string[]): (relPath: string) => boolean {
  const compiled = patterns
    .map((p) => p.trim())
    .filter((p) => p !== '' && !p.startsWith('#'))
    .map((p) => {
      const anchored = p.includes('/');
      const body = p.replace(/^\/+/, '').replace(/\/+$/, '');
      let re = '';
      for (let i = 0; i < body.length; i++) {
        const c = body[i];
        if (c === '*' && body[i + 1] === '*') {
          re += '.*';
          i += 1;
          if (body[i + 1] === '/') i += 1;
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { anchored, re: new RegExp(`^${re}$`) };
    });
  return (relPath) => {
    const parts = relPath.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      for (const c of compiled) {
        if (c.anchored ? c.re.test(prefix) : c.re.test(parts[i - 1])) return true;
      }
    }
    return false;
  };
}

/** The patterns of `.rockitignore` in `root` (none when it is absent). */
export async function readIgnoreFile(root: string): Promise<string[]> {
  try {
    return (await fs.readFile(path.join(root, IGNORE_FILE), 'utf8')).split(/\r?\n/);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`${path.join(root, IGNORE_FILE)}: ${(err as Error).message}`);
  }
}

/** Drops ignored entries (and `.rockitignore` itself) from a folder listing. */
export function applyIgnore(entries: readonly TarWriteEntry[], patterns: readonly string[]): TarWriteEntry[] {
  const ignored = ignoreMatcher(patterns);
  return entries.filter((e) => e.name !== IGNORE_FILE && !ignored(e.name));
}

/** A refusal before upload: the message names the user's path and what is wrong. */
export class PrecheckError extends Error {
  override readonly name = 'PrecheckError';
}

/**
 * Refuses a folder listing the server would refuse: no file at all, or an entry InputGuard refuses
 * (a symlink leaving the build, an unsupported path, limits). `source` is the path as the user gave it.
 */
export function checkFolderEntries(source: string, entries: readonly TarWriteEntry[]): void {
  if (!entries.some((e) => e.type === 'file')) throw new PrecheckError(`${source}: the folder holds no file (after ignores): nothing to push`);
  const guard = new InputGuard();
  try {
    for (const e of entries) {
      const input: InputEntry = {
        name: e.type === 'directory' ? `${e.name}/` : e.name,
        type: e.type === 'directory' ? 'dir' : e.type === 'symlink' ? 'symlink' : 'file',
        detectedType: e.type,
        mode: e.mode,
        sizeBytes: e.size,
        linkTarget: e.linkname ?? '',
      };
      guard.admit(input);
    }
    guard.finish();
  } catch (err) {
    throw refusal(source, err);
  }
}

/**
 * Refuses a tar file the server would refuse: not a tar (sniffed: gzip/zstd magic or a valid tar
 * header checksum), no file inside, or an entry InputGuard refuses. Reads the file once, locally.
 */
export async function checkTarFile(source: string): Promise<void> {
  const head = await readHead(source, 512);
  const compression = detectCompression(head);
  if (compression === 'none' && !tarHeaderOk(head)) {
    throw new PrecheckError(`${source}: not a tar file (${head.length === 0 ? 'empty file' : 'no tar header, gzip or zstd at its start'})`);
  }
  const guard = new InputGuard();
  let files = 0;
  try {
    for await (const e of readTarEntries(source)) {
      const admitted = guard.admit(e);
      if (e.content) for await (const chunk of e.content) void chunk;
      if (admitted?.type === 'file') files += 1;
    }
    guard.finish();
  } catch (err) {
    throw refusal(source, err);
  }
  if (files === 0) throw new PrecheckError(`${source}: the tar holds no file: nothing to push`);
}

function refusal(source: string, err: unknown): PrecheckError {
  const what = err instanceof Error ? err.message : String(err);
  return new PrecheckError(`${source}: ${what}`);
}

async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** A plain tar's first header block carries a valid checksum (v7, ustar, GNU and PAX alike). */
function tarHeaderOk(block: Buffer): boolean {
  if (block.length < 512) return false;
  const field = block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]{1,8}$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return parseInt(field, 8) === sum;
}
