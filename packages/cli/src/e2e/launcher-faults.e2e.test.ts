/**
 * The launcher against a hostile world, end to end (the real `rockit` binary, the real server): a disk that
 * fills up (a real tmpfs of 20 MB) before and during an install, and a server that goes away mid-download
 * (a cutting proxy in front of the real server) for a moment (retries with backoff bridge it) and for good
 * (a clear resumable error; the next run resumes), and an origin that damages some reads (fetched again). Each
 * ends byte-identical to the build.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CLI_BIN, cleanEnv, runRockit, startServer, treeDigest, type ServerProcess } from './test-support/processes.js';
import { noise, publish, writeGame, type Published } from './test-support/game-depot.js';

const ORG = 'acme';
let dir: string;
let server: ServerProcess;
let depot: string;
let game: string;
let pub: Published;
const env = () => ({ HOME: dir });

function jsonLines(stdout: string): any[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

async function gameTree(root: string): Promise<Record<string, string>> {
  const t = await treeDigest(root);
  return Object.fromEntries(Object.entries(t).filter(([k]) => k !== '.rockit' && !k.startsWith('.rockit/')));
}

/** Spawns `rockit <argv>`; `when` is called with each --json event until it returns true. */
function spawnUntil(argv: string[], when: (e: any) => boolean) {
  const child = spawn(process.execPath, [CLI_BIN, ...argv], { env: cleanEnv(env()), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let seen = 0;
  const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  const reached = new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const lines = out.split('\n').slice(0, -1);
      for (; seen < lines.length; seen++) {
        try {
          if (when(JSON.parse(lines[seen]))) resolve();
        } catch {
          /* not JSON */
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.once('close', (c) => reject(new Error(`rockit exited (${c}) before the expected event: ${out}\n${err}`)));
  });
  reached.catch(() => undefined);
  return { child, reached, exited, out: () => out, err: () => err };
}

/** An HTTP proxy in front of the server that can refuse every request (connections reset) while `down`. */
async function cuttingProxy(target: string): Promise<{ address: string; down: boolean; refused: number; corrupt: number; corrupted: number; close: () => Promise<void> }> {
  const t = new URL(target);
  const state = {
    address: '',
    down: false,
    refused: 0,
    /** The next this-many pack reads are answered with one byte flipped. */
    corrupt: 0,
    corrupted: 0,
    close: async () => {
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
  const srv = http.createServer((req, res) => {
    if (state.down) {
      state.refused++;
      req.socket.destroy();
      return;
    }
    const damage = state.corrupt > 0 && req.url?.includes('/packs/') === true;
    if (damage) state.corrupt--;
    const up = http.request({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      if (!damage) return r.pipe(res);
      const parts: Buffer[] = [];
      r.on('data', (b: Buffer) => parts.push(b));
      r.on('end', () => {
        const body = Buffer.concat(parts);
        body[body.length >> 1] ^= 0xff;
        state.corrupted++;
        res.end(body);
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  state.address = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return state;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-e2e-faults-'));
  server = await startServer(path.join(dir, 'data'), { ROCKIT_ADMIN_TOKEN: 'x'.repeat(32), ROCKIT_LOG_LEVEL: 'info', ROCKIT_SCRYPT_COST: '1024' });
  depot = path.join(dir, 'data', 'blobs', 'cdn');
  game = path.join(dir, 'game');
  await writeGame(game, 1);
  pub = await publish(depot, ORG, 'demo', game, 1, { work: dir });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** Mounts a tmpfs of `mb` MB at `at`; false when this machine does not allow it (not root, no mount). */
function mountTmpfs(at: string, mb: number): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mb}m`, 'tmpfs', at], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Fills the file system of `file` until it is full (ENOSPC). */
async function fill(file: string): Promise<void> {
  const fh = await fs.open(file, 'w');
  const block = noise(5, 256 * 1024);
  try {
    for (;;) await fh.write(block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close();
  }
}

describe('a full disk', () => {
  it('refused up front and hit mid-download: a clear error naming the folder and the space; resumes byte-identical once space is freed', async (ctx) => {
    const disk = path.join(dir, 'small-disk');
    await fs.mkdir(disk);
    if (!mountTmpfs(disk, 20)) return ctx.skip('mounting a tmpfs is not permitted here (needs root): the disk-full test cannot run');
    try {
      const to = path.join(disk, 'game');
      const filler = path.join(disk, 'filler.bin');
      // 1. Not enough free space before the start: refused at once, nothing half-written.
      await fs.writeFile(filler, noise(3, 16 * 1024 * 1024));
      const r1 = await runRockit(['install', server.address, `${ORG}/demo`, '--to', to, '--json'], env());
      expect(r1.exitCode).toBe(1);
      const e1 = jsonLines(r1.stdout).at(-1);
      expect(e1).toMatchObject({ phase: 'error', error: 'disk-full', resumable: true });
      expect(e1.message).toContain(to);
      expect(e1.message).toMatch(/\d+(\.\d)? (MiB|KiB|bytes) more are needed/);
      await fs.rm(filler);

      // 2. The disk fills up while the install downloads (another program writes): stops with the same error.
      const run = spawnUntil(['install', server.address, `${ORG}/demo`, '--to', to, '--limit-rate', '1MB', '--json'], (e) => e.bytes > 0 && e.phase !== 'error');
      await run.reached;
      await fill(filler);
      const code = await run.exited;
      expect(code, run.out() + run.err()).toBe(1);
      const e2 = jsonLines(run.out()).at(-1);
      expect(e2).toMatchObject({ phase: 'error', error: 'disk-full', resumable: true });
      expect(e2.message).toContain(to);
      expect(e2.message).toMatch(/more are needed/);
      const st = jsonLines((await runRockit(['status', to, '--json', '--offline'], env())).stdout).at(-1);
      expect(st.phase).toBe('installing');

      // 3. Space freed: the install resumes and ends byte-identical.
      await fs.rm(filler);
      const r3 = await runRockit(['install', server.address, `${ORG}/demo`, '--to', to, '--json'], env());
      expect(r3.exitCode, r3.stderr + r3.stdout).toBe(0);
      expect(jsonLines(r3.stdout).at(-1)).toMatchObject({ phase: 'result', complete: true, resumed: true });
      expect(await gameTree(to)).toEqual(await treeDigest(game));
      const leftovers = (await fs.readdir(path.join(to, '.rockit'))).filter((n) => n.includes('.tmp-'));
      expect(leftovers).toEqual([]);
    } finally {
      execFileSync('umount', ['-l', disk]);
    }
  }, 180_000);
});

describe('an origin that damages some reads', () => {
  it('a damaged read is fetched again, never written as good; the install completes byte-identical', async () => {
    const proxy = await cuttingProxy(server.address);
    try {
      proxy.corrupt = 2;
      const to = path.join(dir, 'install-flaky');
      const r = await runRockit(['install', proxy.address, `${ORG}/demo`, '--to', to, '--json'], env());
      expect(r.exitCode, r.stderr + r.stdout).toBe(0);
      expect(proxy.corrupted).toBe(2);
      const res = jsonLines(r.stdout).at(-1);
      expect(res).toMatchObject({ phase: 'result', complete: true });
      expect(res.fetchedBytes).toBeGreaterThan(pub.storedBytes); // the damaged reads were fetched twice
      expect(await gameTree(to)).toEqual(await treeDigest(game));
    } finally {
      await proxy.close();
    }
  }, 120_000);
});

describe('the server goes away mid-download', () => {
  it('for a moment: retries with backoff bridge it; for good: a resumable error, and the next run resumes byte-identical', async () => {
    const proxy = await cuttingProxy(server.address);
    try {
      // A short outage: the same install completes.
      const to = path.join(dir, 'install-blip');
      const run = spawnUntil(['install', proxy.address, `${ORG}/demo`, '--to', to, '--limit-rate', '2MB', '--json'], (e) => e.bytes > 0 && e.phase !== 'error');
      await run.reached;
      proxy.down = true;
      await new Promise((r) => setTimeout(r, 600));
      proxy.down = false;
      expect(await run.exited, run.out() + run.err()).toBe(0);
      expect(proxy.refused).toBeGreaterThan(0);
      expect(jsonLines(run.out()).at(-1)).toMatchObject({ phase: 'result', complete: true });
      expect(await gameTree(to)).toEqual(await treeDigest(game));

      // A long outage: a clear resumable error; once the server is back, the next run resumes.
      const to2 = path.join(dir, 'install-outage');
      const run2 = spawnUntil(['install', proxy.address, `${ORG}/demo`, '--to', to2, '--limit-rate', '1MB', '--json'], (e) => e.bytes > pub.storedBytes * 0.2 && e.phase !== 'error');
      await run2.reached;
      proxy.down = true;
      expect(await run2.exited).toBe(1);
      expect(jsonLines(run2.out()).at(-1)).toMatchObject({ phase: 'error', error: 'server-unavailable', resumable: true });
      proxy.down = false;
      const again = await runRockit(['install', proxy.address, `${ORG}/demo`, '--to', to2, '--json'], env());
      expect(again.exitCode, again.stderr + again.stdout).toBe(0);
      const r = jsonLines(again.stdout).at(-1);
      expect(r).toMatchObject({ phase: 'result', complete: true, resumed: true });
      expect(r.fetchedBytes).toBeLessThan(pub.storedBytes);
      expect(await gameTree(to2)).toEqual(await treeDigest(game));
    } finally {
      await proxy.close();
    }
  }, 180_000);
});

describe('kill -9 during an update by patch', () => {
  it('status says the update was interrupted; the next update resumes the patch download and ends byte-identical', async () => {
    const p1 = await publish(depot, ORG, 'pdemo', game, 1, { work: path.join(dir, 'p-w1') });
    const to = path.join(dir, 'install-patch-kill');
    expect((await runRockit(['install', server.address, `${ORG}/pdemo`, '--to', to], env())).exitCode).toBe(0);
    const g2 = path.join(dir, 'game-p2');
    await writeGame(g2, 2);
    await fs.writeFile(path.join(g2, 'data', 'levels', 'big.dat'), noise(77, 3 * 1024 * 1024));
    await publish(depot, ORG, 'pdemo', g2, 2, { work: path.join(dir, 'p-w2'), patchFrom: [p1] });
    const run = spawnUntil(['update', to, '--limit-rate', '1MB', '--json'], () => false);
    const data = path.join(to, '.rockit', 'patch', 'data.rkpd');
    for (let i = 0; i < 400 && !((await fs.stat(data).catch(() => undefined))?.size ?? 0); i++) await new Promise((r) => setTimeout(r, 25));
    expect(run.child.exitCode, 'the update ended before it could be killed').toBeNull();
    run.child.kill('SIGKILL');
    await run.exited;
    expect(await gameTree(to)).toEqual(await treeDigest(game));
    const st = jsonLines((await runRockit(['status', to, '--json'], env())).stdout).at(-1);
    expect(st).toMatchObject({ phase: 'installed', build: { buildId: 1 }, updateAvailable: true, updateInterrupted: { via: 'patch' } });
    expect(st.updateInterrupted.bytesDownloaded).toBeGreaterThan(0);
    expect(st.updateInterrupted.message).toMatch(/run rockit update to finish/);
    const up = await runRockit(['update', to, '--json'], env());
    expect(up.exitCode, up.stderr + up.stdout).toBe(0);
    const r = jsonLines(up.stdout).at(-1);
    expect(r).toMatchObject({ outcome: 'patched', build: { buildId: 2 } });
    expect(r.downloadedBytes).toBeLessThan(st.patchBytes);
    expect(await gameTree(to)).toEqual(await treeDigest(g2));
  }, 180_000);
});
