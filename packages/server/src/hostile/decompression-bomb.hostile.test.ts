// Issue 8 item 5: a small compressed tar that expands far past the configured limits is refused by
// mkraw while streaming (at the first entry header past the limit), with the documented detail
// (api.md §8 `fileReadFailed`, `message`) and the stable code `file-read-failed`.
// Through the real binary; the bombs are generated here (gzip by zlib, zstd by the zstd CLI).
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { createGzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECTS, binariesBuilt, newApp, newOrg, startEdge, uploadBuild, waitImport, type EdgeProcess } from './support.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const UPLOAD_LIMIT = 10 * MiB;

/** A ustar header block. */
function tarHeader(name: string, size: number, type: '0' | '5' = '0'): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(type === '5' ? '0000755\0' : '0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

/** The tar of `files` (each `size` zero bytes), one part at a time, zeros in 1 MiB slices. */
function* tarOfZeros(files: Array<{ name: string; size: number }>): Generator<Buffer> {
  const zeros = Buffer.alloc(MiB);
  for (const f of files) {
    yield tarHeader(f.name, f.size);
    let left = f.size;
    while (left > 0) {
      const n = Math.min(left, zeros.length);
      yield zeros.subarray(0, n);
      left -= n;
    }
    const pad = (512 - (f.size % 512)) % 512;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(1024);
}

/** Feeds `parts` through a compressor stream (backpressure kept) and collects its output. */
async function compress(parts: Iterable<Buffer>, codec: 'gzip' | 'zstd'): Promise<Buffer> {
  const child = codec === 'zstd' ? spawn('zstd', ['-q', '-3', '-c'], { stdio: ['pipe', 'pipe', 'inherit'] }) : undefined;
  const input = child ? child.stdin : createGzip({ level: 9 });
  const output = child ? child.stdout : (input as ReturnType<typeof createGzip>);
  const chunks: Buffer[] = [];
  output.on('data', (c: Buffer) => chunks.push(c));
  const finished = new Promise<void>((resolve, reject) => {
    output.once('end', resolve);
    output.once('error', reject);
    child?.once('error', reject);
  });
  for (const p of parts) {
    if (!input.write(p)) await new Promise((r) => input.once('drain', r));
  }
  input.end();
  await finished;
  return Buffer.concat(chunks);
}

/** Bytes under `dir`, all files (the work folder must never hold the expanded bomb). */
function folderBytes(dir: string): number {
  let total = 0;
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const n of names) {
    const p = path.join(dir, n);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    total += st.isDirectory() ? folderBytes(p) : st.size;
  }
  return total;
}

describe.skipIf(!binariesBuilt())('hostile: decompression bombs (issue 8 item 5)', () => {
  let gzipBomb: Buffer;
  let zstdBomb: Buffer;
  let zstdManyFiles: Buffer;
  beforeAll(async () => {
    // 1 GiB of zeros in one file behind a gzip of about 1 MiB.
    gzipBomb = await compress(tarOfZeros([{ name: 'game/zeros.bin', size: GiB }]), 'gzip');
    // 256 files of 1 MiB zeros (256 MiB) behind a zstd of a few KiB.
    zstdBomb = await compress(tarOfZeros(Array.from({ length: 256 }, (_, i) => ({ name: `game/z${i}.bin`, size: MiB }))), 'zstd');
    // 5000 empty files: over a files limit of 1000.
    zstdManyFiles = await compress(tarOfZeros(Array.from({ length: 5000 }, (_, i) => ({ name: `game/f${i}`, size: 0 }))), 'zstd');
  }, 300_000);

  it('the bombs are small and really expand that far', () => {
    expect(gzipBomb.length).toBeLessThan(UPLOAD_LIMIT);
    expect(zstdBomb.length).toBeLessThan(UPLOAD_LIMIT);
    expect(zstdManyFiles.length).toBeLessThan(UPLOAD_LIMIT);
    expect(gzipBomb.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(zstdBomb.readUInt32LE(0)).toBe(0xfd2fb528);
  });

  for (const dialect of TEST_DIALECTS) {
    describe(dialect, () => {
      let edge: EdgeProcess;
      let user: Record<string, string>;
      beforeAll(async () => {
        edge = await startEdge({
          dialect,
          env: { ROCKIT_MAX_UPLOAD_BYTES: String(UPLOAD_LIMIT), ROCKIT_MAX_BUILD_FILES: '1000', ROCKIT_TASK_MAX_ATTEMPTS: '1' },
        });
        user = await newOrg(edge, 'bomb_org');
        await newApp(edge, user, 'bomb');
      }, 120_000);
      afterAll(async () => edge?.dispose());

      it('gzip: 1 MiB that expands to 1 GiB is refused at its entry header, with the documented detail', async () => {
        const last = await waitImport(edge, user, await uploadBuild(edge, user, 'bomb', gzipBomb));
        expect(last.type, JSON.stringify(last)).toBe('mkraw');
        expect(last.status).toBe('failed');
        expect(last.error.code).toBe('file-read-failed');
        expect(last.error.message).toContain('ROCKIT_MAX_BUILD_BYTES');
        expect(last.error.fileReadFailed).toEqual({
          filename: 'game/zeros.bin',
          typeExpected: `expanded build of at most ${UPLOAD_LIMIT} bytes`,
          typeDetected: expect.stringMatching(/^expanded build larger than the limit/),
        });
        // Refused before its content was expanded: the work folder never held it (and is clean now).
        expect(folderBytes(path.join(edge.dataDir, 'work'))).toBeLessThan(UPLOAD_LIMIT);
      }, 300_000);

      it('zstd: 256 MiB of files behind a few KiB is refused at the first file past the limit', async () => {
        const last = await waitImport(edge, user, await uploadBuild(edge, user, 'bomb', zstdBomb));
        expect(last.type).toBe('mkraw');
        expect(last.status).toBe('failed');
        expect(last.error.code).toBe('file-read-failed');
        // 10 files of 1 MiB fit in 10 MiB exactly; the 11th passes the limit.
        expect(last.error.fileReadFailed.filename).toBe('game/z10.bin');
        expect(last.error.fileReadFailed.typeExpected).toBe(`expanded build of at most ${UPLOAD_LIMIT} bytes`);
      }, 300_000);

      it('zstd: more entries than ROCKIT_MAX_BUILD_FILES is refused at the first entry past it', async () => {
        const last = await waitImport(edge, user, await uploadBuild(edge, user, 'bomb', zstdManyFiles));
        expect(last.type).toBe('mkraw');
        expect(last.status).toBe('failed');
        expect(last.error.code).toBe('file-read-failed');
        expect(last.error.message).toContain('ROCKIT_MAX_BUILD_FILES');
        expect(last.error.fileReadFailed).toEqual({ filename: 'game/f1000', typeExpected: 'build of at most 1000 entries', typeDetected: 'build with more entries than the limit' });
      }, 300_000);
    });
  }
});
