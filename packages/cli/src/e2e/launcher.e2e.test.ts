/**
 * The launcher end to end: the real `rockit` binary against the real server binary, whose depot (/cdn) serves
 * builds published into its blob store. Install, kill -9, resume; update by patch without the base manifest
 * (asserted on the server's request log); verify and repair; a corrupt origin; two launchers on one folder;
 * FastStart --until-ready; the player's files kept throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI_BIN, cleanEnv, runRockit, startServer, treeDigest, type ServerProcess } from './test-support/processes.js';
import { noise, publish, writeGame, writeRelease, type Published } from './test-support/game-depot.js';

const ORG = 'acme';
let dir: string;
let server: ServerProcess;
let depot: string;
const env = () => ({ HOME: dir });

/** Requests the server logged for /cdn (from its pino request lines). */
function cdnRequests(): string[] {
  const urls: string[] = [];
  for (const line of server.log().split('\n')) {
    try {
      const rec = JSON.parse(line) as { msg?: string; req?: { url?: string } };
      if (rec.msg === 'incoming request' && rec.req?.url?.startsWith('/cdn/')) urls.push(rec.req.url);
    } catch {
      /* not a JSON line */
    }
  }
  return urls;
}

/** The install folder minus the launcher's state folder. */
async function gameTree(root: string): Promise<Record<string, string>> {
  const t = await treeDigest(root);
  return Object.fromEntries(Object.entries(t).filter(([k]) => k !== '.rockit' && !k.startsWith('.rockit/')));
}

function jsonLines(stdout: string): any[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

/** Spawns `rockit <argv>` and resolves with the child once a --json line satisfies `when`. */
function spawnUntil(argv: string[], when: (e: any) => boolean): Promise<{ child: ReturnType<typeof spawn>; out: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [CLI_BIN, ...argv], { env: cleanEnv(env()), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      for (const l of out.split('\n').slice(0, -1)) {
        try {
          if (when(JSON.parse(l))) return resolve({ child, out: () => out, exited });
        } catch {
          /* partial */
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.once('close', (c) => reject(new Error(`rockit exited (${c}) before the expected event: ${out}\n${err}`)));
  });
}

let game1: string;
let game2: string;
let b1: Published;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-e2e-launcher-'));
  server = await startServer(path.join(dir, 'data'), { ROCKIT_ADMIN_TOKEN: 'x'.repeat(32), ROCKIT_LOG_LEVEL: 'info', ROCKIT_SCRYPT_COST: '1024' });
  depot = path.join(dir, 'data', 'blobs', 'cdn');
  game1 = path.join(dir, 'game1');
  game2 = path.join(dir, 'game2');
  await writeGame(game1, 1);
  await writeGame(game2, 2);
  b1 = await publish(depot, ORG, 'demo', game1, 1, { work: dir });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('rockit install / update / verify / status against the real server', () => {
  const inst = () => path.join(dir, 'install');

  it('install killed with SIGKILL mid-download resumes where it stopped and ends byte-identical', async () => {
    // 1 MB/s: the presence state is saved every 2 s, so half-way (~3.5 s) at least one save happened.
    const argv = ['install', server.address, `${ORG}/demo`, '--to', inst(), '--limit-rate', '1MB', '--json'];
    const run = await spawnUntil(argv, (e) => e.phase !== 'result' && e.bytes > b1.storedBytes * 0.5);
    run.child.kill('SIGKILL');
    await run.exited;
    const st = await runRockit(['status', inst(), '--json', '--offline'], env());
    const s = jsonLines(st.stdout).at(-1);
    expect(s.phase).toBe('installing');
    expect(s.bytesPresent).toBeGreaterThan(0);

    const again = await runRockit(['install', server.address, `${ORG}/demo`, '--to', inst(), '--json'], env());
    expect(again.exitCode, again.stderr).toBe(0);
    const lines = jsonLines(again.stdout);
    const r = lines.at(-1);
    expect(r).toMatchObject({ phase: 'result', ok: true, complete: true, resumed: true });
    expect(r.fetchedBytes).toBeLessThan(b1.storedBytes * 0.8);
    for (const e of lines.slice(0, -1)) expect(Object.keys(e)).toEqual(expect.arrayContaining(['phase', 'bytes', 'total', 'rate', 'eta', 'ready']));
    expect(await gameTree(inst())).toEqual(await treeDigest(game1));
    const status = jsonLines((await runRockit(['status', inst(), '--json'], env())).stdout).at(-1);
    expect(status).toMatchObject({ phase: 'installed', updateAvailable: false, build: { buildId: 1, dxfName: 'b0001-t000' } });
  }, 120_000);

  it('two launchers on one folder: the second is refused with a clear error', async () => {
    const other = path.join(dir, 'install-lock');
    const run = await spawnUntil(['install', server.address, `${ORG}/demo`, '--to', other, '--limit-rate', '1MB', '--json'], (e) => e.bytes > 0);
    const second = await runRockit(['install', server.address, `${ORG}/demo`, '--to', other, '--json'], env());
    run.child.kill('SIGKILL');
    await run.exited;
    expect(second.exitCode).toBe(1);
    expect(jsonLines(second.stdout).at(-1)).toMatchObject({ phase: 'error', error: 'locked' });
    // The killed holder's lock is stale: the next run takes it over and finishes.
    const third = await runRockit(['install', server.address, `${ORG}/demo`, '--to', other, '--json'], env());
    expect(third.exitCode, third.stderr).toBe(0);
    expect(await gameTree(other)).toEqual(await treeDigest(game1));
  }, 120_000);

  it('update uses the patch and never requests the base manifest; the player files survive', async () => {
    await fs.mkdir(path.join(inst(), 'saves'), { recursive: true });
    await fs.writeFile(path.join(inst(), 'saves', 'slot1.sav'), 'my progress');
    await fs.writeFile(path.join(inst(), 'settings.user.ini'), 'volume=3');
    const before = cdnRequests().length;
    const b2 = await publish(depot, ORG, 'demo', game2, 2, { work: dir, patchFrom: [b1] });
    const st = jsonLines((await runRockit(['status', inst(), '--json'], env())).stdout).at(-1);
    expect(st).toMatchObject({ updateAvailable: true, latest: { buildId: 2 } });
    expect(st.patchBytes).toBeGreaterThan(0);

    const up = await runRockit(['update', inst(), '--json'], env());
    expect(up.exitCode, up.stderr).toBe(0);
    const r = jsonLines(up.stdout).at(-1);
    expect(r).toMatchObject({ phase: 'result', outcome: 'patched', build: { buildId: 2 } });
    const requests = cdnRequests().slice(before);
    expect(requests.some((u) => u.includes('/pat/acme/demo/0002/0001/data.rkpd'))).toBe(true);
    const log = JSON.stringify(requests);
    expect(requests.filter((u) => u.includes('base-manifest')), log).toEqual([]);
    expect(requests.filter((u) => u.includes(b1.manifestName) || u.includes(b2.manifestName)), log).toEqual([]);
    expect(requests.filter((u) => u.includes('/packs/')), log).toEqual([]);
    const tree = await gameTree(inst());
    expect(tree['saves/slot1.sav']).toBeDefined();
    expect(await fs.readFile(path.join(inst(), 'settings.user.ini'), 'utf8')).toBe('volume=3');
    delete tree['saves/slot1.sav'];
    delete tree['saves'];
    delete tree['settings.user.ini'];
    expect(tree).toEqual(await treeDigest(game2));
    const again = jsonLines((await runRockit(['update', inst(), '--json'], env())).stdout).at(-1);
    expect(again.outcome).toBe('up-to-date');
  }, 180_000);

  it('verify names damaged and missing files; --repair fetches only their chunks', async () => {
    const pak = path.join(inst(), 'data', 'assets.pak');
    const fh = await fs.open(pak, 'r+');
    await fh.write(Buffer.from('XXXX'), 0, 4, 123_456);
    await fh.close();
    await fs.rm(path.join(inst(), 'config.ini'));
    const v = await runRockit(['verify', inst(), '--json'], env());
    expect(v.exitCode).toBe(1);
    const r = jsonLines(v.stdout).at(-1);
    expect(r.problems).toEqual(expect.arrayContaining([{ path: 'data/assets.pak', problem: 'damaged' }, { path: 'config.ini', problem: 'missing' }]));
    const fix = await runRockit(['verify', inst(), '--repair', '--json'], env());
    expect(fix.exitCode, fix.stderr + fix.stdout).toBe(0);
    const f = jsonLines(fix.stdout).at(-1);
    expect(f.ok).toBe(true);
    expect(f.repaired.sort()).toEqual(['config.ini', 'data/assets.pak']);
    // Only the two files' chunks: the big file and a small one, less than the whole image.
    const pakSize = (await fs.stat(pak)).size;
    expect(f.fetchedBytes).toBeLessThan(pakSize + 200_000);
    expect(await fs.readFile(path.join(inst(), 'saves', 'slot1.sav'), 'utf8')).toBe('my progress');
    expect((await runRockit(['verify', inst()], env())).exitCode).toBe(0);
  }, 120_000);

  it('a patch for another base falls back to the changed chunks of the new image', async () => {
    const other = path.join(dir, 'install-fallback');
    const i1 = await runRockit(['install', server.address, `${ORG}/demo`, '--to', other], env());
    expect(i1.exitCode, i1.stderr).toBe(0); // installs build 2 (the release now)
    // Build 3's release lists a patch "from build 2" that was really made from build 1.
    const game3 = path.join(dir, 'game3');
    await writeGame(game3, 3);
    const b3 = await publish(depot, ORG, 'demo', game3, 3, { work: dir, patchFrom: [b1] });
    const release = JSON.parse(await fs.readFile(path.join(depot, 'dxf/acme/demo/release.json'), 'utf8'));
    await writeRelease(depot, ORG, 'demo', b3, release.patches.map((p: any) => ({ ...p, fromBuildId: 2 })));
    const up = await runRockit(['update', other, '--json'], env());
    expect(up.exitCode, up.stderr).toBe(0);
    const r = jsonLines(up.stdout).at(-1);
    expect(r).toMatchObject({ outcome: 'chunks', build: { buildId: 3 } });
    expect(r.fallback).toMatch(/another base/);
    expect(r.downloadedBytes).toBeLessThan(b3.storedBytes / 2);
    expect(await gameTree(other)).toEqual(await treeDigest(game3));
  }, 180_000);
});

describe('FastStart and bad origins', () => {
  it('install --until-ready stops at ready to play after the preload; the next run streams the rest', async () => {
    const game = path.join(dir, 'game-fast');
    await writeGame(game, 1);
    const pub = await publish(depot, ORG, 'fast', game, 1, { work: dir, profile: { points: [{ tMs: 0, needBytes: 1 << 20 }, { tMs: 1000, needBytes: 2 << 20 }, { tMs: 60_000, needBytes: 7 << 20 }] } });
    const to = path.join(dir, 'install-fast');
    const r1 = await runRockit(['install', server.address, `${ORG}/fast`, '--to', to, '--limit-rate', '1MB', '--until-ready', '--json'], env());
    expect(r1.exitCode, r1.stderr).toBe(0);
    const lines = jsonLines(r1.stdout);
    const ready = lines.find((e) => e.readyNow);
    expect(ready).toMatchObject({ ready: true });
    expect(ready.preloadBytes).toBeGreaterThan(1 << 20);
    expect(ready.preloadBytes).toBeLessThan(pub.storedBytes / 2);
    const r = lines.at(-1);
    expect(r).toMatchObject({ phase: 'result', ready: true, complete: false });
    expect(r.fetchedBytes).toBeLessThan(pub.storedBytes);
    const st = jsonLines((await runRockit(['status', to, '--json', '--offline'], env())).stdout).at(-1);
    expect(st.phase).toBe('installing');
    const r2 = await runRockit(['update', to, '--json'], env());
    expect(r2.exitCode, r2.stderr).toBe(0);
    expect(jsonLines(r2.stdout).at(-1)).toMatchObject({ outcome: 'resumed', install: { complete: true, resumed: true } });
    expect(await gameTree(to)).toEqual(await treeDigest(game));
  }, 120_000);

  it('a corrupt chunk from the origin is never written as good; the install resumes once the origin is fixed', async () => {
    const game = path.join(dir, 'game-broken');
    await writeGame(game, 1, 1024 * 1024);
    const pub = await publish(depot, ORG, 'broken', game, 1, { work: dir });
    const packs = path.join(pub.imageDir, 'packs');
    const pack = path.join(packs, (await fs.readdir(packs))[0]);
    const good = await fs.readFile(pack);
    const bad = Buffer.from(good);
    bad[Math.floor(bad.length * 0.7)] ^= 0xff;
    await fs.writeFile(pack, bad);
    const to = path.join(dir, 'install-broken');
    const r1 = await runRockit(['install', server.address, `${ORG}/broken`, '--to', to, '--json'], env());
    expect(r1.exitCode).toBe(1);
    expect(jsonLines(r1.stdout).at(-1)).toMatchObject({ phase: 'error', error: 'origin-corrupt', resumable: true });
    await fs.writeFile(pack, good);
    const r2 = await runRockit(['install', server.address, `${ORG}/broken`, '--to', to, '--json'], env());
    expect(r2.exitCode, r2.stderr).toBe(0);
    expect(jsonLines(r2.stdout).at(-1)).toMatchObject({ complete: true, resumed: true });
    expect(await gameTree(to)).toEqual(await treeDigest(game));
  }, 120_000);

  it('server down: a clear resumable error, and a wrong folder or app is refused', async () => {
    const to = path.join(dir, 'install-down');
    const r = await runRockit(['install', 'http://127.0.0.1:9', `${ORG}/demo`, '--to', to, '--json'], env());
    expect(r.exitCode).toBe(1);
    expect(jsonLines(r.stdout).at(-1)).toMatchObject({ phase: 'error', error: 'server-unavailable', resumable: true });
    await fs.mkdir(path.join(dir, 'not-empty'), { recursive: true });
    await fs.writeFile(path.join(dir, 'not-empty', 'x'), 'x');
    const r2 = await runRockit(['install', server.address, `${ORG}/demo`, '--to', path.join(dir, 'not-empty'), '--json'], env());
    expect(jsonLines(r2.stdout).at(-1)).toMatchObject({ phase: 'error', error: 'folder-not-empty' });
    const r3 = await runRockit(['status', path.join(dir, 'not-empty'), '--json'], env());
    expect(jsonLines(r3.stdout).at(-1)).toMatchObject({ phase: 'error', error: 'not-installed' });
  }, 120_000);
});

describe('a keyed app', () => {
  it('install needs the key (token through /client/v1/auth); a wrong key is refused; update keeps working with the kept key', async () => {
    const admin = 'launcher-e2e-admin-token-0123456789abcdef';
    // A second server with an admin token we know, so that an org, an app and a key can be made.
    const keyed = await startServer(path.join(dir, 'data-keyed'), { ROCKIT_ADMIN_TOKEN: admin, ROCKIT_LOG_LEVEL: 'info', ROCKIT_SCRYPT_COST: '1024' });
    try {
      const api = async (method: string, p: string, body: unknown, headers: Record<string, string>) => {
        const res = await fetch(keyed.address + p, { method, headers: { ...headers, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
        return { httpStatus: res.status, ...((await res.json().catch(() => ({}))) as any) };
      };
      const org = await api('POST', '/adm/v1/orgs', { name: 'keyco' }, { 'x-rockit-admin-token': admin });
      expect(org.httpStatus).toBe(201);
      const session = await api('POST', '/be/v1/login', { orgName: 'keyco', username: 'admin', password: org.admin.password }, {});
      const auth = (await api('POST', '/be/v1/auth', undefined, { 'x-rockit-besession-token': session.session.token })).auth.token as string;
      expect((await api('POST', '/be/v1/apps', { name: 'locked', label: 'Locked' }, { 'x-rockit-beauth-token': auth })).httpStatus).toBe(201);
      const created = await api('POST', '/be/v1/keys', { appName: 'locked', label: 'launcher' }, { 'x-rockit-beauth-token': auth });
      expect(created.httpStatus, JSON.stringify(created)).toBe(201);
      const key = (created.key?.key ?? created.key) as string;
      expect(typeof key).toBe('string');
      const kdepot = path.join(dir, 'data-keyed', 'blobs', 'cdn');
      const k1 = await publish(kdepot, 'keyco', 'locked', game1, 1, { work: path.join(dir, 'kwork1') });
      const to = path.join(dir, 'install-keyed');
      const none = await runRockit(['install', keyed.address, 'keyco/locked', '--to', to, '--json'], env());
      expect(jsonLines(none.stdout).at(-1)).toMatchObject({ phase: 'error', error: 'key-required' });
      const wrong = await runRockit(['install', keyed.address, 'keyco/locked', '--to', path.join(dir, 'install-keyed-wrong'), '--key', 'rkdk_wrong', '--json'], env());
      expect(jsonLines(wrong.stdout).at(-1)).toMatchObject({ phase: 'error', error: 'key-rejected' });
      const ok = await runRockit(['install', keyed.address, 'keyco/locked', '--to', to, '--key', key, '--json'], env());
      expect(ok.exitCode, ok.stderr + ok.stdout).toBe(0);
      expect(await gameTree(to)).toEqual(await treeDigest(game1));
      await publish(kdepot, 'keyco', 'locked', game2, 2, { work: path.join(dir, 'kwork2'), patchFrom: [k1] });
      const up = await runRockit(['update', to, '--json'], env());
      expect(up.exitCode, up.stderr + up.stdout).toBe(0);
      expect(jsonLines(up.stdout).at(-1)).toMatchObject({ outcome: 'patched', build: { buildId: 2 } });
      expect(await gameTree(to)).toEqual(await treeDigest(game2));
      // A revoked (expired) key: a clear error naming the key problem; the install stays as it was.
      expect((await api('DELETE', `/be/v1/keys/${created.key.id}`, undefined, { 'x-rockit-beauth-token': auth })).httpStatus).toBe(200);
      const revoked = await runRockit(['update', to, '--json'], env());
      expect(revoked.exitCode).toBe(1);
      expect(jsonLines(revoked.stdout).at(-1)).toMatchObject({ phase: 'error', error: 'key-rejected' });
      expect(await gameTree(to)).toEqual(await treeDigest(game2));
      const renewed = await api('POST', '/be/v1/keys', { appName: 'locked', label: 'launcher 2' }, { 'x-rockit-beauth-token': auth });
      const again = await runRockit(['update', to, '--key', renewed.key.key, '--json'], env());
      expect(again.exitCode, again.stderr + again.stdout).toBe(0);
      expect(jsonLines(again.stdout).at(-1)).toMatchObject({ outcome: 'up-to-date' });
    } finally {
      await keyed.stop();
    }
  }, 180_000);
});

describe('rockit play (FUSE)', () => {
  it('an unmodified program reads files through the mount before the download completes and gets the right bytes', async () => {
    const game = path.join(dir, 'game-play');
    await writeGame(game, 1);
    await publish(depot, ORG, 'play', game, 1, { work: path.join(dir, 'play-work'), profile: { points: [{ tMs: 0, needBytes: 1 << 20 }, { tMs: 60_000, needBytes: 7 << 20 }] } });
    const to = path.join(dir, 'install-play');
    const first = await runRockit(['install', server.address, `${ORG}/play`, '--to', to, '--limit-rate', '1MB', '--until-ready', '--json'], env());
    expect(first.exitCode, first.stderr).toBe(0);
    expect(jsonLines(first.stdout).at(-1)).toMatchObject({ ready: true, complete: false });
    // The "game": hashes the tail of the big archive (not streamed yet), a small file and a file via the symlink.
    const script = `
      const fs = require('fs'), c = require('crypto');
      const h = (b) => c.createHash('sha256').update(b).digest('hex');
      const fd = fs.openSync('data/assets.pak', 'r'); const size = fs.fstatSync(fd).size;
      const tail = Buffer.alloc(100000); fs.readSync(fd, tail, 0, tail.length, size - tail.length); fs.closeSync(fd);
      console.log(JSON.stringify({ game: true, tail: h(tail), config: h(fs.readFileSync('config.ini')), exe: h(fs.readFileSync('start')), list: fs.readdirSync('.').sort() }));`;
    const mnt = path.join(dir, 'mnt-play');
    await fs.mkdir(mnt);
    const r = await runRockit(['play', to, '--mount', mnt, '--limit-rate', '1MB', '--json', '--', process.execPath, '-e', script], env());
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const seen = JSON.parse(r.stderr.split('\n').find((l) => l.startsWith('{"game":true'))!);
    const assets = await fs.readFile(path.join(game, 'data', 'assets.pak'));
    const { createHash } = await import('node:crypto');
    const h = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(seen.tail).toBe(h(assets.subarray(assets.length - 100000)));
    expect(seen.config).toBe(h(await fs.readFile(path.join(game, 'config.ini'))));
    expect(seen.exe).toBe(h(await fs.readFile(path.join(game, 'bin', 'game'))));
    expect(seen.list).toEqual(['bin', 'config.ini', 'data', 'start']);
    const res = jsonLines(r.stdout).at(-1);
    expect(res).toMatchObject({ phase: 'result', exitCode: 0, complete: false });
    expect(res.stalls).toBeGreaterThan(0);
    // Unmounted on exit; the next update finishes the install.
    expect(await fs.readFile('/proc/mounts', 'utf8')).not.toContain(mnt);
    const up = await runRockit(['update', to, '--json'], env());
    expect(up.exitCode, up.stderr).toBe(0);
    expect(await gameTree(to)).toEqual(await treeDigest(game));
  }, 180_000);
});

describe('kill -9 during an update', () => {
  it('by changed chunks: leaves the old build (never a mix); status says interrupted and settles it; the next update resumes the download', async () => {
    const g1 = path.join(dir, 'crash-g1');
    const g2 = path.join(dir, 'crash-g2');
    await writeGame(g1, 1);
    await writeGame(g2, 2);
    const c1 = await publish(depot, ORG, 'crash', g1, 1, { work: path.join(dir, 'crash-w1') });
    const to = path.join(dir, 'install-crash');
    expect((await runRockit(['install', server.address, `${ORG}/crash`, '--to', to], env())).exitCode).toBe(0);
    await fs.writeFile(path.join(to, 'my-mod.txt'), 'mod');
    // Build 2 adds 4 MB of new data: several 1 MB reads at 1 MB/s, so the kill lands mid-download.
    await fs.writeFile(path.join(g2, 'data', 'levels', 'big.dat'), noise(99, 4 * 1024 * 1024));
    await publish(depot, ORG, 'crash', g2, 2, { work: path.join(dir, 'crash-w2'), patchFrom: [c1] });
    const run = await spawnUntil(['update', to, '--no-patch', '--limit-rate', '1MB', '--json'], (e) => e.phase === 'update' && e.bytes > 0);
    // Killed once the download state has been saved (every 2 s) and before the download ended.
    const saved = path.join(to, '.rockit', 'update', 'chunks.bin');
    for (let i = 0; i < 200 && !(await fs.stat(saved).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(run.child.exitCode, 'the update ended before it could be killed').toBeNull();
    run.child.kill('SIGKILL');
    await run.exited;
    const mid = await gameTree(to);
    expect(mid['my-mod.txt']).toBeDefined();
    delete mid['my-mod.txt'];
    expect(mid).toEqual(await treeDigest(g1));
    const st = jsonLines((await runRockit(['status', to, '--json', '--offline'], env())).stdout).at(-1);
    expect(st).toMatchObject({ phase: 'installed', build: { buildId: 1 }, settled: 'kept', updateInterrupted: { via: 'chunks', to: { buildId: 2 } } });
    expect(st.updateInterrupted.message).toMatch(/interrupted.*run rockit update to finish/);
    expect(st.updateInterrupted.bytesDownloaded).toBeGreaterThan(0);
    expect(st.updateInterrupted.bytesDownloaded).toBeLessThan(st.updateInterrupted.bytesNeeded);
    const state = JSON.parse(await fs.readFile(path.join(to, '.rockit', 'install.json'), 'utf8'));
    expect(state.updating).toBeUndefined();
    const human = await runRockit(['status', to, '--offline'], env());
    expect(human.stdout).toMatch(/interrupted .*run rockit update to finish/);

    const up = await runRockit(['update', to, '--no-patch', '--json'], env());
    expect(up.exitCode, up.stderr).toBe(0);
    const r = jsonLines(up.stdout).at(-1);
    expect(r).toMatchObject({ outcome: 'chunks', build: { buildId: 2 } });
    expect(r.resumedBytes).toBe(st.updateInterrupted.bytesDownloaded);
    expect(r.downloadedBytes).toBeLessThan(st.updateInterrupted.bytesNeeded);
    const after = await gameTree(to);
    expect(after['my-mod.txt']).toBeDefined();
    delete after['my-mod.txt'];
    expect(after).toEqual(await treeDigest(g2));
    await expect(fs.stat(`${to}.rockit-new`)).rejects.toThrow();
    await expect(fs.stat(path.join(to, '.rockit', 'update'))).rejects.toThrow();
    const done = jsonLines((await runRockit(['status', to, '--json', '--offline'], env())).stdout).at(-1);
    expect(done).toMatchObject({ build: { buildId: 2 } });
    expect(done.updateInterrupted).toBeUndefined();
  }, 180_000);

  it('inside the swap (folder moved away): status finishes the update; the folder is the new build', async () => {
    const g1 = path.join(dir, 'swap-g1');
    const g2 = path.join(dir, 'swap-g2');
    await writeGame(g1, 1);
    await writeGame(g2, 2);
    const s1 = await publish(depot, ORG, 'swap', g1, 1, { work: path.join(dir, 'swap-w1') });
    const to = path.join(dir, 'install-swap');
    expect((await runRockit(['install', server.address, `${ORG}/swap`, '--to', to], env())).exitCode).toBe(0);
    await fs.writeFile(path.join(to, 'my-save.txt'), 'save');
    await publish(depot, ORG, 'swap', g2, 2, { work: path.join(dir, 'swap-w2'), patchFrom: [s1] });
    // SIGKILL right after the installed folder was renamed away and before B took its place.
    const killed = await runRockit(['update', to, '--json'], { ...env(), ROCKIT_TEST_CRASH_AT: 'movedOld' });
    expect(killed.exitCode, killed.stderr + killed.stdout).toBeNull(); // killed by its signal
    await expect(fs.stat(to)).rejects.toThrow();
    const st = jsonLines((await runRockit(['status', to, '--json', '--offline'], env())).stdout).at(-1);
    expect(st).toMatchObject({ phase: 'installed', build: { buildId: 2 }, settled: 'finished' });
    expect(st.updateInterrupted).toBeUndefined();
    const after = await gameTree(to);
    expect(after['my-save.txt']).toBeDefined();
    delete after['my-save.txt'];
    expect(after).toEqual(await treeDigest(g2));
    await expect(fs.stat(`${to}.rockit-old`)).rejects.toThrow();
    expect(jsonLines((await runRockit(['update', to, '--json'], env())).stdout).at(-1)).toMatchObject({ outcome: 'up-to-date' });
  }, 180_000);
});
