import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { encodeTarHeader, packTar, tarSize, type TarWriteEntry } from '@rockit/engine';
import { listFolder } from './tar-pack.js';

let dir: string;
let root: string;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-tar-'));
  root = path.join(dir, 'game');
  await fs.mkdir(root);
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

interface ReadEntry {
  name: string;
  type: string;
  mode: number;
  size: number;
  linkname: string | null;
  data: Buffer;
}

/** Reads an archive back with tar-stream (an independent implementation). */
async function extract(archive: Buffer): Promise<ReadEntry[]> {
  const out: ReadEntry[] = [];
  const ex = tarStream.extract();
  ex.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    stream.on('end', () => {
      out.push({
        name: header.name,
        type: header.type ?? 'file',
        mode: header.mode ?? 0,
        size: header.size ?? 0,
        linkname: header.linkname ?? null,
        data: Buffer.concat(chunks),
      });
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
    ex.end(archive);
  });
  return out;
}

/** A small game folder touching every header case: nesting, empty and odd-sized files, modes,
 * symlinks, UTF-8, a path that needs the ustar prefix and one that needs a pax record. */
async function makeGame(): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const put = async (rel: string, data: Buffer, mode = 0o644) => {
    const abs = path.join(root, rel);
    await fs.mkdir(path.dirname(abs), { recursive: true });
    await fs.writeFile(abs, data);
    await fs.chmod(abs, mode);
    files.set(rel, data);
  };
  const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
  await put('game.bin', bytes(513, 1), 0o755);
  await put('empty.dat', Buffer.alloc(0));
  await put('data/level1.pak', bytes(4096, 2));
  await put('data/levels/ünïcødé.txt', Buffer.from('hello'));
  const longDir = 'assets/' + 'd'.repeat(90) + '/' + 'e'.repeat(40);
  await put(`${longDir}/texture.bin`, bytes(100, 3)); // > 100 bytes, fits prefix + name
  const veryLong = 'x'.repeat(120) + '/' + 'y'.repeat(120) + '/' + 'z'.repeat(30) + '.bin';
  await put(veryLong, bytes(700, 4)); // > 255 bytes: pax path
  await fs.symlink('game.bin', path.join(root, 'launcher'));
  await fs.symlink('data/' + 'q'.repeat(120), path.join(root, 'dangling-long-link'));
  return files;
}

describe('tar-pack', () => {
  it('streams exactly tarSize bytes that tar-stream reads back identically', async () => {
    const files = await makeGame();
    const entries = await listFolder(root);
    const archive = await collect(packTar(entries));
    expect(archive.length).toBe(tarSize(entries));
    expect(archive.length % 512).toBe(0);

    const read = await extract(archive);
    expect(read.map((e) => e.name)).toEqual(entries.map((e) => (e.type === 'directory' ? `${e.name}/` : e.name)));
    const readFiles = read.filter((e) => e.type === 'file');
    expect(new Map(readFiles.map((e) => [e.name, e.data]))).toEqual(files);
    expect(read.find((e) => e.name === 'game.bin')?.mode).toBe(0o755);
    expect(read.find((e) => e.name === 'launcher')).toMatchObject({ type: 'symlink', linkname: 'game.bin' });
    expect(read.find((e) => e.name === 'dangling-long-link')).toMatchObject({ type: 'symlink', linkname: 'data/' + 'q'.repeat(120) });
    expect(read.find((e) => e.name === 'data/')?.type).toBe('directory');
    // Archive order is byte order of names, parents first.
    expect(read.slice(0, 3).map((e) => e.name)).toEqual(['assets/', `assets/${'d'.repeat(90)}/`, `assets/${'d'.repeat(90)}/${'e'.repeat(40)}/`]);
  });

  it('is read by GNU tar: listing and extraction are byte-identical', async () => {
    const files = await makeGame();
    const entries = await listFolder(root);
    const archivePath = path.join(dir, 'game.tar');
    await fs.writeFile(archivePath, await collect(packTar(entries)));

    const list = spawnSync('tar', ['-tf', archivePath], { encoding: 'utf8' });
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout.trimEnd().split('\n')).toEqual(entries.map((e) => (e.type === 'directory' ? `${e.name}/` : e.name)));

    const out = path.join(dir, 'out');
    await fs.mkdir(out);
    const x = spawnSync('tar', ['-xf', archivePath, '-C', out], { encoding: 'utf8' });
    expect(x.status, x.stderr).toBe(0);
    for (const [rel, data] of files) expect(await fs.readFile(path.join(out, rel))).toEqual(data);
    expect(await fs.readlink(path.join(out, 'launcher'))).toBe('game.bin');
    expect((await fs.stat(path.join(out, 'game.bin'))).mode & 0o777).toBe(0o755);
  });

  it('produces the same bytes for the same folder (deterministic)', async () => {
    await makeGame();
    const a = await collect(packTar(await listFolder(root)));
    const b = await collect(packTar(await listFolder(root)));
    expect(a.equals(b)).toBe(true);
  });

  it('fails the stream when a file shrinks or grows after listing', async () => {
    await fs.writeFile(path.join(root, 'a.bin'), Buffer.alloc(2000, 1));
    const entries = await listFolder(root);
    await fs.truncate(path.join(root, 'a.bin'), 1000);
    await expect(collect(packTar(entries))).rejects.toThrow(/shrank/);

    await fs.writeFile(path.join(root, 'a.bin'), Buffer.alloc(3000, 1));
    await expect(collect(packTar(entries))).rejects.toThrow(/changed size/);
  });

  it('refuses entries that are not files, folders or symlinks', async () => {
    const sock = path.join(root, 's.sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      await expect(listFolder(root)).rejects.toThrow(/not a file, folder or symbolic link/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('refuses a source that is not a folder', async () => {
    await fs.writeFile(path.join(dir, 'f'), 'x');
    await expect(listFolder(path.join(dir, 'f'))).rejects.toThrow(/not a folder/);
  });

  it('records sizes past 8 GiB in a pax size record and a base-256 field', () => {
    const size = 9 * 1024 ** 3 + 5;
    const entry: TarWriteEntry = { name: 'huge.bin', type: 'file', source: '/nonexistent', size, mode: 0o644, mtime: 1_700_000_000 };
    const header = encodeTarHeader(entry);
    expect(header.length).toBe(3 * 512); // pax header, pax records, ustar block
    expect(String.fromCharCode(header[156])).toBe('x');
    expect(header.subarray(512, 1024).toString('utf8')).toContain(` size=${size}\n`);
    const field = header.subarray(1024 + 124, 1024 + 136);
    expect(field[0]).toBe(0x80);
    let v = 0n;
    for (const b of field.subarray(1)) v = (v << 8n) | BigInt(b);
    expect(v).toBe(BigInt(size));
    expect(tarSize([entry])).toBe(3 * 512 + size + (512 - (size % 512)) + 1024);
  });
});
