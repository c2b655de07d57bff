// Helpers shared by the engine benchmarks: timed child processes, folder sizes, the 1 MiB chunk-store reference.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { compress } from 'zstd-napi';

const here = dirname(fileURLToPath(import.meta.url));

/** Runs a command, throws on failure, returns wall seconds. */
export function timed(cmd, args, opts = {}) {
  const t = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', opts.stdout ?? 'ignore', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr?.toString().slice(0, 500)}`);
  return (performance.now() - t) / 1000;
}

/** Runs one operation of run-op.mjs in a child; returns { seconds, maxRssBytes, result }. */
export function runOp(op, args) {
  const r = spawnSync(process.execPath, [join(here, 'run-op.mjs'), op, JSON.stringify(args)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`run-op ${op} failed: ${r.stderr.toString().slice(-2000)}`);
  const lines = r.stdout.toString().trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

/** Sum of regular file sizes under a path (a file counts itself). */
export function sizeOf(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const e of readdirSync(path)) n += sizeOf(join(path, e));
  return n;
}

export function rm(path) {
  rmSync(path, { recursive: true, force: true });
}

function* files(root, rel = '') {
  for (const e of readdirSync(join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) yield* files(root, p);
    else if (e.isFile()) yield p;
  }
}

function* blocks(root, blockBytes) {
  const buf = Buffer.alloc(blockBytes);
  for (const p of files(root)) {
    const fd = openSync(join(root, p), 'r');
    try {
      for (;;) {
        let n = 0;
        while (n < blockBytes) {
          const k = readSync(fd, buf, n, blockBytes - n, null);
          if (k === 0) break;
          n += k;
        }
        if (n === 0) break;
        yield buf.subarray(0, n);
        if (n < blockBytes) break;
      }
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * The standard chunk-store patch, as a reference: every file of each build cut into fixed 1 MiB blocks
 * from its start; the patch is the new build's distinct blocks absent from the old build, each
 * compressed alone with zstd -3. Returns { bytes, blocks }.
 */
export function fixedChunkStorePatch(oldDir, newDir, blockBytes = 1024 * 1024) {
  const have = new Set();
  for (const b of blocks(oldDir, blockBytes)) have.add(createHash('sha256').update(b).digest('hex'));
  let bytes = 0;
  let count = 0;
  for (const b of blocks(newDir, blockBytes)) {
    const h = createHash('sha256').update(b).digest('hex');
    if (have.has(h)) continue;
    have.add(h);
    const z = compress(b, { compressionLevel: 3 });
    bytes += Math.min(z.length, b.length);
    count++;
  }
  return { bytes, blocks: count };
}

export const MB = 1e6;
export const fmtMB = (n) => (n < MB ? `${(n / 1e3).toFixed(1)} kB` : `${(n / MB).toFixed(1)} MB`);
export const fmtRate = (bytes, s) => `${(bytes / MB / s).toFixed(1)} MB/s`;
export const fmtS = (s) => `${s.toFixed(2)} s`;
export const ratio = (a, b) => (b > 0 ? (a / b).toFixed(3) : 'n/a');
