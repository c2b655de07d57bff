import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LimitError, TarError } from '../errors.js';
import { buildImage } from '../image/build.js';
import { makeTempDir, removeDir } from '../image/test-support/random-tree.js';
import { makeTar, type TarItem } from '../image/test-support/tars.js';
import { zstdCompress } from '../codec/chunk-codec.js';
import { readTarEntries } from './tar-reader.js';

let tmp: string;
beforeEach(async () => {
  tmp = await makeTempDir('tar');
});
afterEach(async () => {
  await removeDir(tmp);
});

async function build(items: TarItem[] | Buffer, limits?: Parameters<typeof buildImage>[0]['limits']) {
  const tar = Buffer.isBuffer(items) ? items : await makeTar(items);
  return buildImage({ input: Readable.from([tar]), outDir: join(tmp, 'out'), threads: 0, limits });
}

async function refusal(items: TarItem[] | Buffer, limits?: Parameters<typeof buildImage>[0]['limits']): Promise<unknown> {
  try {
    await build(items, limits);
  } catch (err) {
    return err;
  }
  throw new Error('expected the build to be refused');
}

async function listEntries(tar: Buffer | string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of readTarEntries(typeof tar === 'string' ? tar : Readable.from([tar]))) {
    out.push(`${e.type}:${e.name}${e.linkTarget ? '->' + e.linkTarget : ''}:${e.sizeBytes}`);
    if (e.content) for await (const _ of e.content) void _;
  }
  return out;
}

describe('tar reader', () => {
  const items: TarItem[] = [
    { name: 'game/', type: 'directory' },
    { name: 'game/run.sh', content: '#!/bin/sh\n', mode: 0o755 },
    { name: 'game/link', type: 'symlink', linkname: 'run.sh' },
  ];

  it('reads plain, gzip and zstd archives alike (detected by content)', async () => {
    const tar = await makeTar(items);
    const expected = ['dir:game/:0', 'file:game/run.sh:10', 'symlink:game/link->run.sh:0'];
    expect(await listEntries(tar)).toEqual(expected);
    expect(await listEntries(gzipSync(tar))).toEqual(expected);
    expect(await listEntries(zstdCompress(tar, 3))).toEqual(expected);
  });

  it('resolves PAX and GNU long names', async () => {
    const long = `${'d'.repeat(120)}/${'n'.repeat(130)}.txt`;
    const src = join(tmp, 'src');
    await mkdir(join(src, 'd'.repeat(120)), { recursive: true });
    await writeFile(join(src, long), 'long');
    for (const format of ['gnu', 'pax']) {
      const file = join(tmp, `${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '-cf', file, '-C', src, long]);
      expect(await listEntries(file)).toEqual([`file:${long}:4`]);
    }
    const pax = await makeTar([{ name: long, content: 'x' }]);
    expect(await listEntries(pax)).toEqual([`file:${long}:1`]);
  });

  it('reports a truncated archive as TarError truncated', async () => {
    const tar = await makeTar([{ name: 'a.bin', content: Buffer.alloc(5000, 1) }]);
    const err = await refusal(tar.subarray(0, 2048));
    expect(err).toBeInstanceOf(TarError);
    expect((err as TarError).code).toBe('truncated');
  });
});

describe('tar input rules', () => {
  const cases: Array<[string, TarItem[], string, string]> = [
    ['.. segments', [{ name: '../evil', content: 'x' }], 'path-escapes-root', '../evil'],
    ['nested ..', [{ name: 'a/../../evil', content: 'x' }], 'path-escapes-root', 'a/../../evil'],
    ['absolute paths', [{ name: '/etc/evil', content: 'x' }], 'absolute-path', '/etc/evil'],
    ['symlinks pointing out', [{ name: 'l', type: 'symlink', linkname: '../../etc/passwd' }], 'symlink-escapes-root', 'l'],
    ['absolute symlinks', [{ name: 'l', type: 'symlink', linkname: '/etc/passwd' }], 'symlink-escapes-root', 'l'],
    [
      'symlinks that leave through another symlink',
      [
        { name: 'd/e/s', type: 'symlink', linkname: '../../q' },
        { name: 'q', type: 'directory' },
        { name: 'd/e/t', type: 'symlink', linkname: 's/../../..' },
      ],
      'symlink-escapes-root',
      'd/e/t',
    ],
    [
      'entries beneath a symlink',
      [
        { name: 'l', type: 'symlink', linkname: 'sub' },
        { name: 'l/x', content: 'x' },
      ],
      'path-through-symlink',
      'l/x',
    ],
    ['hard links to missing entries', [{ name: 'h', type: 'link', linkname: 'missing' }], 'hardlink-target-missing', 'h'],
    ['hard links out of the root', [{ name: 'h', type: 'link', linkname: '../outside' }], 'path-escapes-root', 'h'],
    ['device files', [{ name: 'dev/null', type: 'character-device' }], 'unsupported-entry-type', 'dev/null'],
    [
      'duplicate entries',
      [
        { name: 'a', content: 'x' },
        { name: './a', content: 'y' },
      ],
      'duplicate-entry',
      './a',
    ],
  ];
  for (const [what, entries, code, filename] of cases) {
    it(`refuses ${what}`, async () => {
      const err = await refusal(entries);
      expect(err).toBeInstanceOf(TarError);
      expect((err as TarError).code).toBe(code);
      expect((err as TarError).filename).toBe(filename);
      // Nothing is left behind: no output folder, no staging folders.
      expect(await readdir(tmp)).toEqual([]);
    });
  }

  it('refuses FIFOs in folder input too', async () => {
    const dir = join(tmp, 'with-fifo');
    await mkdir(dir);
    await writeFile(join(dir, 'a.txt'), 'a');
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    const err = (await buildImage({ input: dir, outDir: join(tmp, 'out'), threads: 0 }).catch((e: unknown) => e)) as TarError;
    expect(err).toBeInstanceOf(TarError);
    expect(err.code).toBe('unsupported-entry-type');
    expect(err.typeDetected).toBe('fifo');
    expect(await readdir(tmp)).toEqual(['with-fifo']);
  });

  it('names the detected type of unsupported entries', async () => {
    const err = (await refusal([{ name: 'p', type: 'fifo' }])) as TarError;
    expect(err.typeDetected).toBe('fifo');
  });

  it('accepts hard links to earlier files and symlinks that stay inside', async () => {
    const r = await build([
      { name: './a/file', content: 'data' },
      { name: 'a/hard', type: 'link', linkname: './a/file' },
      { name: 'a/hard2', type: 'link', linkname: 'a/hard' },
      { name: 'a/up', type: 'symlink', linkname: '../a/file' },
    ]);
    const byPath = Object.fromEntries(r.manifest.files.map((f) => [f.path, f]));
    expect(byPath['a/hard'].linkTarget).toBe('a/file');
    expect(byPath['a/hard2'].linkTarget).toBe('a/file');
    expect(byPath['a/up'].linkTarget).toBe('../a/file');
  });

  it('enforces the file-count, path-length and total-size limits', async () => {
    const many = Array.from({ length: 50 }, (_, i) => ({ name: `f${i}`, content: 'x' }));
    let err = await refusal(many, { maxFiles: 20 });
    expect(err).toBeInstanceOf(LimitError);
    expect((err as LimitError).limit).toBe('maxFiles');
    err = await refusal([{ name: 'x'.repeat(300), content: 'x' }], { maxPathLength: 255 });
    expect((err as LimitError).limit).toBe('maxPathLength');
    err = await refusal([{ name: 'big', content: Buffer.alloc(10_000) }], { maxTotalBytes: 5000 });
    expect((err as LimitError).limit).toBe('maxTotalBytes');
    expect(existsSync(join(tmp, 'out'))).toBe(false);
    const ok = await build(many, { maxFiles: 50 });
    expect(ok.stats.files).toBe(50);
  });

  it('counts skipped payloads of non-file entries and metadata against maxTotalBytes (decompression bombs)', async () => {
    const header = (name: string, size: number, type: string): Buffer => {
      const h = Buffer.alloc(512);
      h.write(name, 0);
      h.write('0000755\0', 100);
      h.write(size.toString(8).padStart(11, '0') + '\0', 124);
      h.write('        ', 148);
      h.write(type, 156);
      h.write('ustar\0' + '00', 257);
      let sum = 0;
      for (const b of h) sum += b;
      h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
      return h;
    };
    // A folder entry carrying 64 KiB of zeros (other readers skip it): no file bytes, but 64 KiB expanded.
    const dirPayload = Buffer.concat([header('d/', 65536, '5'), Buffer.alloc(65536), Buffer.alloc(1024)]);
    const err = await refusal(gzipSync(dirPayload), { maxTotalBytes: 10_000 });
    expect(err).toBeInstanceOf(LimitError);
    expect((err as LimitError).limit).toBe('maxTotalBytes');
    expect((err as LimitError).entry).toBe('d/');
    // PAX records before one entry count too, and are bounded on their own (4 MiB).
    const record = Buffer.from('30 comment=' + 'c'.repeat(18) + '\n');
    const paxEntry = Buffer.concat([header('PaxHeader', record.length, 'x'), record, Buffer.alloc(512 - record.length)]);
    const withPax = Buffer.concat([paxEntry, header('f', 0, '0'), Buffer.alloc(1024)]);
    const paxErr = await refusal(withPax, { maxTotalBytes: 100 });
    expect(paxErr, String(paxErr)).toBeInstanceOf(LimitError);
    const meta = Buffer.alloc(1024 * 1024 - 512, 0x41);
    const oneMeta = Buffer.concat([header('PaxHeader', meta.length, 'K'), meta]);
    const endless = Buffer.concat([...Array.from({ length: 5 }, () => oneMeta), header('f', 0, '0'), Buffer.alloc(1024)]);
    const tooMuch = await refusal(gzipSync(endless));
    expect(tooMuch).toBeInstanceOf(TarError);
    expect((tooMuch as TarError).message).toContain('metadata entries of more than');
    // Under the default limits the folder's payload is skipped, as other readers do.
    expect((await build(gzipSync(dirPayload))).stats.files).toBe(0);
  });
});
