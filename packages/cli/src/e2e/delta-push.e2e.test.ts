// Delta push end to end (issue 13 item 4) through the real binaries: `rockit push` of a small change
// sends a small fraction of the build and publishes the same image as a full push; a delta upload
// survives kill -9 of the server (and of the CLI) and `rockit push --resume` finishes it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packTar } from '@rockit/engine';
import { listFolder } from '../api/tar-pack.js';
import { CLI_BIN, callJson, cleanEnv, listFiles, runRockit, startServer, treeDigest, waitFor, type ServerProcess } from './test-support/processes.js';
import { freePort, startProxy } from './test-support/proxy.js';

const ADMIN_TOKEN = 'e2e-delta-admin-token-0123456789abcdef';
const ORG = 'deltaco';
const SERVER_ENV = {
  ROCKIT_ADMIN_TOKEN: ADMIN_TOKEN, ROCKIT_SCRYPT_COST: '1024', ROCKIT_WORKER_POLL_MS: '50', ROCKIT_TASK_MAX_ATTEMPTS: '1', ROCKIT_LOG_LEVEL: 'info',
  // A dead server's PUT is taken over after its lease: short, so the kill -9 test takes seconds.
  ROCKIT_LEASE_SECONDS: '8',
};

let dir: string;
let server: ServerProcess | undefined;

/** A copy of `from` with ~2 % of its largest file rewritten in place and one small file added. */
async function smallChange(from: string, to: string, seed: number): Promise<void> {
  await fs.cp(from, to, { recursive: true, preserveTimestamps: true });
  const files = (await listFolder(to)).filter((e) => e.type === 'file').sort((a, b) => b.size - a.size);
  const total = files.reduce((n, f) => n + f.size, 0);
  const big = files[0];
  const data = await fs.readFile(big.source);
  const patch = createHash('sha256').update(`seed ${seed}`).digest();
  const len = Math.min(Math.floor(total * 0.02), data.length);
  const at = Math.floor((data.length - len) / 2);
  for (let i = 0; i < len; i++) data[at + i] ^= patch[i % 32] | 1;
  await fs.writeFile(big.source, data);
  await fs.writeFile(path.join(to, `changelog-${seed}.txt`), `change ${seed}\n`);
}

async function tarSha256(folder: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of packTar(await listFolder(folder))) h.update(c as Buffer);
  return h.digest('hex');
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-e2e-delta-'));
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('delta push through rockit-edge serve and rockit', () => {
  it('a small change sends under 10 % of the build and publishes the same image as a full push', async () => {
    const data = path.join(dir, 'data');
    server = await startServer(data, SERVER_ENV);
    const base = server.address;
    const created = await callJson(base, 'POST', '/adm/v1/orgs', { name: ORG }, { 'x-rockit-admin-token': ADMIN_TOKEN });
    expect(created.httpStatus).toBe(201);
    const env = { XDG_CONFIG_HOME: path.join(dir, 'cfg'), HOME: dir };
    const rockit = (argv: string[], stdin?: string) => runRockit(argv, env, stdin);
    expect((await rockit(['login', '--server', base, '--org', ORG, '--user', 'admin', '--password-stdin'], created.admin.password + '\n')).exitCode).toBe(0);
    for (const app of ['delta', 'whole']) expect((await rockit(['apps', 'create', app, '--label', app])).exitCode).toBe(0);
    const gen = await rockit(['gamegen', 'build', '--seed', '11', '--size', '8MB', '--versions', '1', '--json', '--out', path.join(dir, 'series')]);
    expect(gen.exitCode, gen.stderr).toBe(0);
    const v1 = path.join(dir, 'series', 'v1');
    const v2 = path.join(dir, 'v2');
    await smallChange(v1, v2, 2);

    for (const app of ['delta', 'whole']) {
      const p1 = await rockit(['push', v1, `${ORG}/${app}`, '--name', '1.0', '--json']);
      expect(p1.exitCode, p1.stderr).toBe(0);
      expect(JSON.parse(p1.stdout).delta).toBeUndefined(); // nothing kept yet: the whole build
    }
    const d2 = await rockit(['push', v2, `${ORG}/delta`, '--name', '2.0', '--json']);
    expect(d2.exitCode, d2.stderr).toBe(0);
    const sum = JSON.parse(d2.stdout);
    expect(sum).toMatchObject({ delta: true, release: { iCurBuild: 2 } });
    expect(sum.uploadedBytes).toBeLessThan(sum.buildBytes * 0.1);
    expect(await listFiles(path.join(dir, 'cfg', 'rockit', 'deltas'))).toEqual([]);
    const f2 = await rockit(['push', v2, `${ORG}/whole`, '--name', '2.0', '--full', '--json']);
    expect(f2.exitCode, f2.stderr).toBe(0);
    expect(JSON.parse(f2.stdout).uploadedBytes).toBe(sum.buildBytes);

    // The dltar of the delta assembled exactly the tar a full push sends.
    const auth = await (async () => {
      const s = await callJson(base, 'POST', '/be/v1/login', { orgName: ORG, username: 'admin', password: created.admin.password });
      return { 'x-rockit-beauth-token': (await callJson(base, 'POST', '/be/v1/auth', undefined, { 'x-rockit-besession-token': s.session.token })).auth.token };
    })();
    const dl = await callJson(base, 'GET', '/be/v1/tasks?appName=delta&type=dltar&order[]=-created&limit=1', undefined, auth);
    expect(dl.tasks[0].result).toMatchObject({ delta: true, sha256: await tarSha256(v2) });

    // Same published image (every file byte-identical), same release.json apart from names and dates.
    const rel = async (app: string) => (await fetch(`${base}/cdn/dxf/${ORG}/${app}/release.json`)).json() as Promise<any>;
    const [ra, rb] = [await rel('delta'), await rel('whole')];
    // Dates (`created`) differ; the app's name appears in paths and fields.
    const strip = (r: unknown, app: string): unknown =>
      JSON.parse(JSON.stringify(r, (k, v: unknown) => (k === 'created' ? undefined : v)).replaceAll(`/${app}/`, '/APP/').replaceAll(`"${app}"`, '"APP"'));
    expect(strip(ra, 'delta')).toEqual(strip(rb, 'whole'));
    const img = (app: string, r: any) => path.join(data, 'blobs', 'cdn', 'dxf', ORG, app, '0002', r.dxfName);
    const digestA = await treeDigest(img('delta', ra));
    expect(Object.keys(digestA).length).toBeGreaterThan(2);
    expect(digestA).toEqual(await treeDigest(img('whole', rb)));

    // The server cannot use a delta (here: build 2's packs damaged after it was asked about them, as if rotated
    // away): the task fails with unknown-chunk and rockit pushes the whole build by itself.
    for (const pack of await listFiles(path.join(img('delta', ra), 'packs'))) {
      const file = path.join(img('delta', ra), 'packs', pack);
      const bytes = await fs.readFile(file);
      for (let i = 64; i < bytes.length; i += 4096) bytes[i] ^= 0x5a;
      await fs.writeFile(file, bytes);
    }
    const v3 = path.join(dir, 'v3');
    await smallChange(v2, v3, 3);
    const d3 = await rockit(['push', v3, `${ORG}/delta`, '--name', '3.0']);
    expect(d3.exitCode, d3.stderr).toBe(0);
    expect(d3.stderr).toMatch(/delta: .* to send of .* \(\d+\.\d %\)/);
    expect(d3.stderr).toMatch(/could not build from the delta \(unknown-chunk\); pushing the whole build/);
    expect(d3.stdout).toMatch(new RegExp(`^published ${ORG}/delta build 3 \\(3\\.0\\)`, 'm'));
    await server.stop();
    server = undefined;
  }, 240_000);

  it('survives kill -9 of the server and the CLI mid-upload: rockit push --resume sends the rest of the delta', async () => {
    const data = path.join(dir, 'kdata');
    const proxyPort = await freePort();
    const env = { ...SERVER_ENV, ROCKIT_PUBLIC_URL: `http://127.0.0.1:${proxyPort}` };
    server = await startServer(data, env);
    const base = server.address;
    const port = Number(new URL(base).port);
    const created = await callJson(base, 'POST', '/adm/v1/orgs', { name: ORG }, { 'x-rockit-admin-token': ADMIN_TOKEN });
    const cenv = { XDG_CONFIG_HOME: path.join(dir, 'kcfg'), HOME: dir };
    const rockit = (argv: string[], stdin?: string) => runRockit(argv, cenv, stdin);
    // The CLI talks through a proxy that slows uploads to 4 MiB/s, so the kill lands mid-upload.
    const proxy = await startProxy(new URL(base), { uploadBytesPerSecond: 4 * 1024 * 1024 }, proxyPort);
    try {
      expect((await rockit(['login', '--server', proxy.url, '--org', ORG, '--user', 'admin', '--password-stdin'], created.admin.password + '\n')).exitCode).toBe(0);
      expect((await rockit(['apps', 'create', 'kill', '--label', 'Kill'])).exitCode).toBe(0);
      const v1 = path.join(dir, 'k1');
      await fs.mkdir(path.join(v1, 'data'), { recursive: true });
      await fs.writeFile(path.join(v1, 'data', 'base.pak'), randomBytes(4 * 1024 * 1024));
      const p1 = await rockit(['push', v1, `${ORG}/kill`, '--name', '1']);
      expect(p1.exitCode, p1.stderr).toBe(0);
      // v2 adds 16 MiB of new data: a delta of about that size (4 s through the proxy).
      const v2 = path.join(dir, 'k2');
      await fs.cp(v1, v2, { recursive: true, preserveTimestamps: true });
      await fs.writeFile(path.join(v2, 'data', 'dlc.pak'), randomBytes(16 * 1024 * 1024));

      const cli = spawn(process.execPath, [CLI_BIN, 'push', v2, `${ORG}/kill`, '--name', '2'], { env: cleanEnv(cenv), stdio: ['ignore', 'pipe', 'pipe'] });
      let cliErr = '';
      cli.stderr.setEncoding('utf8').on('data', (s: string) => (cliErr += s));
      cli.stdout.resume();
      const cliExited = new Promise((r) => cli.once('exit', r));
      const s = await callJson(base, 'POST', '/be/v1/login', { orgName: ORG, username: 'admin', password: created.admin.password });
      const auth = { 'x-rockit-beauth-token': (await callJson(base, 'POST', '/be/v1/auth', undefined, { 'x-rockit-besession-token': s.session.token })).auth.token };
      const taskName = await waitFor('a stored part of the delta upload', 60_000, async () => {
        const t = await callJson(base, 'GET', '/be/v1/tasks?appName=kill&type=dltar&status=submitted', undefined, auth);
        return t.tasks?.[0]?.progress > 0 ? (t.tasks[0].name as string) : undefined;
      });
      expect(cliErr).toMatch(/delta: /);
      const exited = new Promise((r) => server!.proc.once('exit', r));
      server.proc.kill('SIGKILL');
      cli.kill('SIGKILL');
      await Promise.all([exited, cliExited]);
      const kept = await listFiles(path.join(dir, 'kcfg', 'rockit', 'deltas'));
      expect(kept).toHaveLength(1);
      expect((await fs.stat(path.join(dir, 'kcfg', 'rockit', 'deltas'))).mode & 0o777).toBe(0o700);
      expect((await fs.stat(path.join(dir, 'kcfg', 'rockit', 'deltas', kept[0]))).mode & 0o777).toBe(0o600);
      await new Promise((r) => setTimeout(r, 3000));
      server = await startServer(data, env, port);

      const resumed = await rockit(['push', '--resume', taskName]);
      expect(resumed.exitCode, resumed.stderr).toBe(0);
      expect(resumed.stderr).toMatch(/resuming task .*: the server holds [\d.]+ \S+ of/);
      expect(resumed.stdout).toMatch(new RegExp(`^published ${ORG}/kill build 2 \\(2\\)`));
      expect(existsSync(path.join(dir, 'kcfg', 'rockit', 'deltas', kept[0]))).toBe(false);
      const t = await callJson(base, 'GET', `/be/v1/tasks/${taskName}`, undefined, auth);
      expect(t.task).toMatchObject({ status: 'succeeded', result: { delta: true, sha256: await tarSha256(v2) } });
    } finally {
      await proxy.close();
    }
  }, 240_000);
});
