import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyPatch } from './apply.js';
import { UnsafePathError } from './errors.js';
import { makePatchFromSides } from './make.js';
import { memorySide, Rng, snapshot } from './test-support/trees.js';

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'rockit-patch-hostile-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const base = () =>
  memorySide([
    { path: 'a.bin', type: 'file', data: new Rng(1).bytes(50_000) },
    { path: 'd', type: 'dir' },
  ]);

async function attempt(target: Parameters<typeof memorySide>[0]) {
  const p = join(work, 'p');
  await makePatchFromSides(base(), memorySide(target), { outDir: p, level: 1 });
  const A = join(work, 'A');
  await mkdir(join(A, 'd'), { recursive: true });
  await writeFile(join(A, 'a.bin'), new Rng(1).bytes(50_000));
  const out = join(work, 'box', 'out');
  await mkdir(join(work, 'box'));
  const err = await applyPatch({ patch: p, fromDir: A, outDir: out }).catch((e: unknown) => e);
  return { err, boxEntries: await readdir(join(work, 'box')), outEntries: await readdir(out).catch(() => []) };
}

describe('hostile target manifests', () => {
  const cases: Array<[string, Parameters<typeof memorySide>[0]]> = [
    ['dot-dot path', [{ path: '../evil.txt', type: 'file', data: Buffer.from('x') }]],
    ['absolute path', [{ path: '/tmp/evil.txt', type: 'file', data: Buffer.from('x') }]],
    ['file under a symlink', [{ path: 'l', type: 'symlink', linkTarget: '..' }, { path: 'l/evil.txt', type: 'file', data: Buffer.from('x') }]],
    ['symlink out of the root', [{ path: 'l', type: 'symlink', linkTarget: '../../etc' }]],
    ['absolute symlink', [{ path: 'l', type: 'symlink', linkTarget: '/etc/passwd' }]],
    ['hard link out of the root', [{ path: 'h', type: 'hardlink', linkTarget: '../a.bin' }]],
    ['duplicate path', [{ path: 'x', type: 'file', data: Buffer.from('1') }, { path: 'x', type: 'file', data: Buffer.from('2') }]],
  ];
  for (const [name, entries] of cases) {
    it(`refuses ${name} before writing anything`, async () => {
      const { err, boxEntries, outEntries } = await attempt(entries);
      expect(err).toBeInstanceOf(UnsafePathError);
      expect(boxEntries.filter((n) => n !== 'out')).toEqual([]);
      expect(outEntries).toEqual([]);
    });
  }
});

describe('patch over HTTP', () => {
  let server: Server;
  afterEach(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('applies a patch served from a base URL', async () => {
    const aBig = new Rng(3).bytes(400_000);
    const aIni = Buffer.from('a=1\n');
    const A = [
      { path: 'big.bin', type: 'file' as const, data: aBig },
      { path: 'cfg', type: 'dir' as const },
      { path: 'cfg/x.ini', type: 'file' as const, data: aIni },
    ];
    const bBig = Buffer.from(aBig);
    bBig.write('patched!', 200_000);
    const B = [{ ...A[0], data: bBig }, A[1], { ...A[2], data: Buffer.from('a=2\n'), mode: 0o755 }, { path: 'cfg/l', type: 'symlink' as const, linkTarget: 'x.ini' }];
    const p = join(work, 'p');
    await makePatchFromSides(memorySide(A), memorySide(B), { outDir: p, level: 3 });
    server = createServer((req, res) => {
      const name = (req.url ?? '').replace(/^\/patches\//, '');
      if (!/^[a-z.-]+$/.test(name)) return void res.writeHead(404).end();
      createReadStream(join(p, name))
        .on('error', () => res.writeHead(404).end())
        .pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const fromDir = join(work, 'A');
    await mkdir(join(fromDir, 'cfg'), { recursive: true });
    await writeFile(join(fromDir, 'big.bin'), aBig);
    await writeFile(join(fromDir, 'cfg/x.ini'), aIni);
    const out = join(work, 'out');
    await applyPatch({ patch: `http://127.0.0.1:${port}/patches/`, fromDir, outDir: out });
    const expected = join(work, 'expected');
    await mkdir(join(expected, 'cfg'), { recursive: true });
    await writeFile(join(expected, 'big.bin'), bBig);
    await writeFile(join(expected, 'cfg/x.ini'), 'a=2\n', { mode: 0o755 });
    const { symlink } = await import('node:fs/promises');
    await symlink('x.ini', join(expected, 'cfg/l'));
    expect(await snapshot(out)).toEqual(await snapshot(expected));
  });
});

describe('modes from the patch', () => {
  it('never sets setuid, setgid or sticky bits and keeps folders usable by their owner', async () => {
    const p = join(work, 'p');
    const target = memorySide([
      { path: 'a.bin', type: 'file', data: new Rng(1).bytes(50_000), mode: 0o4755 },
      { path: 'd', type: 'dir', mode: 0o2000 },
      { path: 'd/new.sh', type: 'file', data: Buffer.from('echo hi\n'), mode: 0o6711 },
    ]);
    await makePatchFromSides(base(), target, { outDir: p, level: 1 });
    const A = join(work, 'A');
    await mkdir(join(A, 'd'), { recursive: true });
    await writeFile(join(A, 'a.bin'), new Rng(1).bytes(50_000));
    const out = join(work, 'out');
    await applyPatch({ patch: p, fromDir: A, outDir: out });
    const { stat } = await import('node:fs/promises');
    expect((await stat(join(out, 'a.bin'))).mode & 0o7777).toBe(0o755);
    expect((await stat(join(out, 'd/new.sh'))).mode & 0o7777).toBe(0o711);
    expect((await stat(join(out, 'd'))).mode & 0o7777).toBe(0o700);
  });
});
