// End to end through the real binaries (issue 4, item 9): `rockit-edge serve` (SQLite, temp data
// folder) and the `rockit` command, spoken to only over HTTP and the command line. One publisher's
// story, step by step; each step relies on the ones before it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort, startProxy } from './test-support/proxy.js';
import os from 'node:os';
import path from 'node:path';
import { packTar } from '@rockit/engine';
import { listFolder } from '../api/tar-pack.js';
import { listFiles, runRockit, startS3rver, startServer, treeDigest, waitFor, type S3Store, type ServerProcess, callJson } from './test-support/processes.js';

const ADMIN_TOKEN = 'e2e-publish-admin-token-0123456789abcd';
const ORG = 'acme';

let dir: string;
let server: ServerProcess;
let base: string;
let adminPassword: string;
let authToken: string;
let tarServer: http.Server | undefined;
let s3: S3Store | undefined;
let cliEnv: Record<string, string>;
const origin = () => path.join(dir, 'origin');
const series = () => path.join(dir, 'series');

const api = (method: string, p: string, body?: unknown, headers: Record<string, string> = { 'x-rockit-beauth-token': authToken }): Promise<any> =>
  callJson(base, method, p, body, headers);

const rockit = (argv: string[], stdin?: string) => runRockit(argv, cliEnv, stdin);

/** The app once no import of it is in flight; throws with the task's error when a task failed. */
async function settledApp(expectBuild: number): Promise<any> {
  return waitFor(`app demo at build ${expectBuild}`, 60_000, async () => {
    const tasks = await api('GET', '/be/v1/tasks?appName=demo&status=failed&limit=100');
    if (tasks.tasks?.length) throw new Error(`failed task: ${JSON.stringify(tasks.tasks)}`);
    const res = await api('GET', '/be/v1/apps/demo');
    const app = res.app;
    return app && app.iCurBuild === expectBuild && !app.processing && !app.locked ? app : undefined;
  });
}

/** Files of the app on the fs origin, relative to the origin folder. */
async function originFiles(): Promise<string[]> {
  const files: string[] = [];
  for (const top of [`dxf/${ORG}/demo`, `pat/${ORG}/demo`]) {
    for (const f of await listFiles(path.join(origin(), top))) files.push(`${top}/${f}`);
  }
  return files.sort();
}

// Upload URLs name ROCKIT_PUBLIC_URL, never the Host header: the server's public URL is a proxy in
// front of it (a plain one by default; the resume tests swap in a cutting or stalling one on the same port).
let frontPort: number;
let front: { close(): Promise<void> } | undefined;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-e2e-publish-'));
  await fs.mkdir(origin());
  frontPort = await freePort();
  server = await startServer(path.join(dir, 'data'), {
    ROCKIT_PUBLIC_URL: `http://127.0.0.1:${frontPort}`,
    ROCKIT_ADMIN_TOKEN: ADMIN_TOKEN,
    ROCKIT_SCRYPT_COST: '1024',
    ROCKIT_WORKER_POLL_MS: '50',
    ROCKIT_GRACE_PERIOD_SECONDS: '1',
    ROCKIT_ALLOW_PRIVATE_ADDRESSES: 'true',
    ROCKIT_TASK_MAX_ATTEMPTS: '1',
    ROCKIT_LOG_LEVEL: 'info',
    // A resume at the right offset takes over a PUT stalled this long (the half-open test below).
    ROCKIT_UPLOAD_STALL_SECONDS: '2',
  });
  base = server.address;
  front = await startProxy(new URL(base), {}, frontPort);
  cliEnv = { XDG_CONFIG_HOME: path.join(dir, 'cfg'), HOME: dir };
}, 60_000);

afterAll(async () => {
  await front?.close();
  await server?.stop();
  await s3?.stop();
  if (tarServer) await new Promise((r) => tarServer!.close(r));
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('publishing through rockit-edge serve and the rockit command', () => {
  let dxf2: string;
  let manifest2: string;

  it('creates an org, logs in, creates an fs deployment and an app', async () => {
    const created = await api('POST', '/adm/v1/orgs', { name: ORG }, { 'x-rockit-admin-token': ADMIN_TOKEN });
    expect(created.httpStatus).toBe(201);
    adminPassword = created.admin.password;
    const session = await api('POST', '/be/v1/login', { orgName: ORG, username: 'admin', password: adminPassword }, {});
    const auth = await api('POST', '/be/v1/auth', undefined, { 'x-rockit-besession-token': session.session.token });
    authToken = auth.auth.token;

    const login = await rockit(['login', '--server', base, '--org', ORG, '--user', 'admin', '--password-stdin'], adminPassword + '\n');
    expect(login.exitCode, login.stderr).toBe(0);
    const dep = await rockit(['deployments', 'create', 'cdn_fs', '--type', 'fs', '--path', origin()]);
    expect(dep.exitCode, dep.stderr).toBe(0);
    const app = await rockit(['apps', 'create', 'demo', '--label', 'Demo', '--max-builds', '2', '--deployments', 'cdn_fs']);
    expect(app.exitCode, app.stderr).toBe(0);
    const got = await api('GET', '/be/v1/apps/demo');
    expect(got.app).toMatchObject({ name: 'demo', label: 'Demo', maxBuilds: 2, deployments: ['cdn_fs'] });

    const gen = await rockit(['gamegen', 'build', '--seed', '5', '--size', '3MB', '--versions', '4', '--tar', '--json', '--out', series()]);
    expect(gen.exitCode, gen.stderr).toBe(0);
    for (const v of ['v1', 'v2', 'v3', 'v4', 'v2.tar']) expect(existsSync(path.join(series(), v)), v).toBe(true);
  });

  it('pushes v1 from a folder and prints the release', async () => {
    const push = await rockit(['push', path.join(series(), 'v1'), `${ORG}/demo`, '--name', '1.0']);
    expect(push.exitCode, push.stderr).toBe(0);
    expect(push.stdout).toMatch(new RegExp(`^published ${ORG}/demo build 1 \\(1\\.0\\), dxf \\S+; no patches\\n$`));
    const app = await settledApp(1);
    expect(app.builds.map((b: any) => b.buildName)).toEqual(['1.0']);
  });

  it('imports v2 from a URL; the image on the depot and on the fs origin reproduces v2', async () => {
    const tar = path.join(series(), 'v2.tar');
    const bytes = await fs.readFile(tar);
    tarServer = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': String(bytes.length) });
      createReadStream(tar).pipe(res);
    });
    await new Promise<void>((r) => tarServer!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(tarServer.address() as AddressInfo).port}/v2.tar`;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const submitted = await api('POST', '/be/v1/builds', { appName: 'demo', url, size: bytes.length, sha256, buildName: '2.0' });
    expect(submitted.httpStatus, JSON.stringify(submitted)).toBe(202);
    expect(submitted.task.type).toBe('dltar');
    const app = await settledApp(2);
    dxf2 = app.dxfName;
    expect(app.patches).toEqual([expect.objectContaining({ fromBuildId: 1, toBuildId: 2 })]);

    const inst = path.join(dir, 'inst');
    const extract = await rockit(['image', 'extract', `${base}/cdn/dxf/${ORG}/demo/0002/${dxf2}/`, '--out', inst]);
    expect(extract.exitCode, extract.stderr).toBe(0);
    const v2 = await treeDigest(path.join(series(), 'v2'));
    expect(Object.values(v2).filter((d) => d !== 'dir').length).toBeGreaterThan(1);
    expect(await treeDigest(inst)).toEqual(v2);

    const onOrigin = path.join(origin(), `dxf/${ORG}/demo/0002/${dxf2}`);
    expect((await listFiles(onOrigin)).length).toBeGreaterThan(0);
    const release = JSON.parse(await fs.readFile(path.join(origin(), `dxf/${ORG}/demo/release.json`), 'utf8'));
    expect(release).toMatchObject({ orgName: ORG, appName: 'demo', buildId: 2, buildName: '2.0', dxfName: dxf2 });
    expect(release.image.path).toBe(`dxf/${ORG}/demo/0002/${dxf2}/`);
    manifest2 = release.image.manifest;
    expect(existsSync(path.join(onOrigin, manifest2))).toBe(true);
    const fromOrigin = path.join(dir, 'inst-origin');
    const extract2 = await rockit(['image', 'extract', onOrigin, '--out', fromOrigin]);
    expect(extract2.exitCode, extract2.stderr).toBe(0);
    expect(await treeDigest(fromOrigin)).toEqual(await treeDigest(path.join(series(), 'v2')));
  });

  it('pushes v3; the published patch 0002 → 0003 turns the v2 install into v3', async () => {
    const push = await rockit(['push', path.join(series(), 'v3'), `${ORG}/demo`, '--name', '3.0']);
    expect(push.exitCode, push.stderr).toBe(0);
    expect(push.stdout).toMatch(/build 3 \(3\.0\).*patches from build 2/);
    await settledApp(3);
    const inst3 = path.join(dir, 'inst3');
    const apply = await rockit(['patch', 'apply', path.join(origin(), `pat/${ORG}/demo/0003/0002`), '--from', path.join(dir, 'inst'), '--out', inst3]);
    expect(apply.exitCode, apply.stderr).toBe(0);
    expect(await treeDigest(inst3)).toEqual(await treeDigest(path.join(series(), 'v3')));
  });

  it('pushes v4 with maxBuilds 2: build 2 rotates out and the origin keeps only what the release references', async () => {
    const push = await rockit(['push', path.join(series(), 'v4'), `${ORG}/demo`, '--name', '4.0']);
    expect(push.exitCode, push.stderr).toBe(0);
    const app = await settledApp(4);
    expect(app.builds.map((b: any) => b.buildId).sort()).toEqual([3, 4]);
    expect(app.patches).toEqual([expect.objectContaining({ fromBuildId: 3, toBuildId: 4 })]);

    const release = JSON.parse(await fs.readFile(path.join(origin(), `dxf/${ORG}/demo/release.json`), 'utf8'));
    expect(release.buildId).toBe(4);
    expect(release.patches.map((p: any) => p.fromBuildId)).toEqual([3]);
    const referenced = async () => {
      const want = [`dxf/${ORG}/demo/release.json`];
      for (const folder of [release.image.path, ...release.patches.map((p: any) => p.path)]) {
        for (const f of await listFiles(path.join(origin(), folder))) want.push(`${folder}${f}`);
      }
      return want.sort();
    };
    // Cleanup runs after the 1 s grace period; poll until the origin holds exactly the release.
    const want = await referenced();
    expect(want.some((f) => f.startsWith(`pat/${ORG}/demo/0004/0003/`))).toBe(true);
    await waitFor('the origin to hold only the current release', 30_000, async () => {
      const have = await originFiles();
      return JSON.stringify(have) === JSON.stringify(want) ? have : undefined;
    }).catch(async (err: Error) => {
      expect(await originFiles(), err.message).toEqual(want);
    });
    // The depot dropped build 2's image as well.
    const gone = await fetch(`${base}/cdn/dxf/${ORG}/demo/0002/${dxf2}/${manifest2}`);
    expect(gone.status).toBe(404);
  });

  it('a push to an s3 deployment with wrong credentials locks the app; fixing the deployment and retrying clears it', async () => {
    s3 = await startS3rver(path.join(dir, 's3'), 'cdn');
    // The secret comes from the environment, not the command line (where the process list shows it).
    const withSecret = await runRockit(
      ['deployments', 'create', 'cdn_s3', '--type', 's3', '--endpoint', s3.endpoint, '--region', s3.region, '--bucket', s3.bucket,
        '--access-key-id', 'WRONGKEYID', '--force-path-style'],
      { ...cliEnv, ROCKIT_S3_SECRET_ACCESS_KEY: 'wrong-secret' },
    );
    expect(withSecret.exitCode, withSecret.stderr).toBe(0);
    const patched = await api('PATCH', '/be/v1/apps', { name: 'demo', deployments: ['cdn_fs', 'cdn_s3'] });
    expect(patched.httpStatus, JSON.stringify(patched)).toBe(200);

    const push = await rockit(['push', path.join(series(), 'v1'), `${ORG}/demo`, '--name', '5.0']);
    expect(push.exitCode, push.stdout).toBe(1);
    expect(push.stderr).toContain('deploy-failed');
    expect(push.stderr).toContain('cdn_s3');
    expect(push.stderr).not.toContain('wrong-secret');
    const locked = await waitFor('the app in error state', 30_000, async () => {
      const a = (await api('GET', '/be/v1/apps/demo')).app;
      return a.error ? a : undefined;
    });
    expect(locked).toMatchObject({ locked: true, error: { type: 'deploy' } });
    expect(typeof locked.error.task).toBe('string');
    const refused = await api('POST', '/be/v1/builds', { appName: 'demo' });
    expect(refused).toMatchObject({ httpStatus: 409, error: 'app-locked' });
    const depInError = await api('GET', '/be/v1/deployments/cdn_s3');
    expect(depInError.deployment.status).toBe('error');

    const fixed = await api('PATCH', '/be/v1/deployments', { name: 'cdn_s3', s3: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    expect(fixed.httpStatus, JSON.stringify(fixed)).toBe(200);
    const retry = await api('POST', '/be/v1/trigger', { type: 'retry', taskName: locked.error.task });
    expect(retry.httpStatus, JSON.stringify(retry)).toBeLessThan(300);
    expect(retry.task).toMatchObject({ name: locked.error.task, type: 'deploy' });
    const app = await waitFor('the retried deploy to clear the error', 60_000, async () => {
      const a = (await api('GET', '/be/v1/apps/demo')).app;
      return a.error === null && !a.locked && a.iCurBuild === 5 && !a.processing ? a : undefined;
    });
    expect(app.dxfName).toEqual(expect.any(String));
    expect((await api('GET', `/be/v1/tasks/${locked.error.task}`)).task.status).toBe('succeeded');
    const s3Release = await listFiles(path.join(s3.directory, 'cdn'));
    expect(s3Release.some((f) => f.includes('release.json')), s3Release.join('\n')).toBe(true);
    expect((await api('GET', '/be/v1/deployments/cdn_s3')).deployment.status).toBe('ok');
  });

  it('DELETE /be/v1/apps/demo empties its origin folders', async () => {
    expect((await originFiles()).length).toBeGreaterThan(0);
    const del = await api('DELETE', '/be/v1/apps/demo');
    expect(del.httpStatus, JSON.stringify(del)).toBe(200);
    await waitFor('the origin folders of demo to be empty', 30_000, async () => ((await originFiles()).length === 0 ? true : undefined)).catch(
      async (err: Error) => {
        expect(await originFiles(), err.message).toEqual([]);
      },
    );
    expect((await api('GET', '/be/v1/apps/demo')).httpStatus).toBe(404);
    expect((await fetch(`${base}/cdn/dxf/${ORG}/demo/release.json`)).status).toBe(404);
    const s3Left = (await listFiles(path.join(s3!.directory, 'cdn'))).filter((f) => /(^|\/)(dxf|pat)\//.test(f));
    expect(s3Left).toEqual([]);
  });

  it('a push whose connection breaks mid-upload resumes where the server is and publishes the exact build', async () => {
    // A 20 MiB folder (2.5 upload parts), pushed through a proxy that cuts the upload's connection once, after 12 MiB.
    const big = path.join(dir, 'big');
    await fs.mkdir(path.join(big, 'data'), { recursive: true });
    await fs.writeFile(path.join(big, 'data', 'level.pak'), randomBytes(20 * 1024 * 1024));
    const tarDigest = createHash('sha256');
    for await (const c of packTar(await listFolder(big))) tarDigest.update(c as Buffer);
    expect((await api('POST', '/be/v1/apps', { name: 'big', label: 'Big', deployments: ['cdn_fs'] })).httpStatus).toBe(201);

    await front?.close();
    const proxy = await startProxy(new URL(base), { cutUploadAfter: 12 * 1024 * 1024 }, frontPort);
    try {
      const login = await rockit(['login', '--server', proxy.url, '--org', ORG, '--user', 'admin', '--password-stdin'], adminPassword + '\n');
      expect(login.exitCode, login.stderr).toBe(0);
      const push = await rockit(['push', big, `${ORG}/big`, '--name', 'resumed']);
      expect(push.exitCode, push.stderr).toBe(0);
      expect(proxy.cuts()).toBe(1);
      expect(push.stderr).toMatch(/upload broke off .*; resuming at 8\.0 MiB \(attempt 1\)/);
      expect(push.stdout).toMatch(new RegExp(`^published ${ORG}/big build 1 \\(resumed\\)`));
    } finally {
      await proxy.close();
      front = await startProxy(new URL(base), {}, frontPort);
    }
    const tasks = await api('GET', '/be/v1/tasks?appName=big&type=dltar');
    expect(tasks.tasks).toHaveLength(1);
    expect(tasks.tasks[0]).toMatchObject({ status: 'succeeded', result: { sha256: tarDigest.digest('hex') } });
  }, 120_000);

  it('a push whose connection goes half-open (the proxy stops forwarding, never closes) takes the upload over and publishes the exact build', async () => {
    const big = path.join(dir, 'halfopen');
    await fs.mkdir(path.join(big, 'data'), { recursive: true });
    await fs.writeFile(path.join(big, 'data', 'level.pak'), randomBytes(20 * 1024 * 1024));
    const tarDigest = createHash('sha256');
    for await (const c of packTar(await listFolder(big))) tarDigest.update(c as Buffer);
    expect((await api('POST', '/be/v1/apps', { name: 'halfopen', label: 'Half-open', deployments: ['cdn_fs'] })).httpStatus).toBe(201);

    await front?.close();
    const proxy = await startProxy(new URL(base), { stallUploadAfter: 12 * 1024 * 1024 }, frontPort);
    try {
      const login = await rockit(['login', '--server', proxy.url, '--org', ORG, '--user', 'admin', '--password-stdin'], adminPassword + '\n');
      expect(login.exitCode, login.stderr).toBe(0);
      // The CLI gives the silent connection up after 3 s; the server's PUT still holds the upload
      // (its idle timeout is 60 s), and is taken over: it has shown no progress for 2 s.
      const push = await rockit(['push', big, `${ORG}/halfopen`, '--name', 'taken-over', '--idle-timeout', '3']);
      expect(push.exitCode, push.stderr).toBe(0);
      expect(proxy.stalls()).toBe(1);
      expect(push.stderr).toMatch(/upload broke off \(.*idle.*\); resuming at 8\.0 MiB/);
      expect(push.stderr).not.toMatch(/expired/);
      expect(push.stdout).toMatch(new RegExp(`^published ${ORG}/halfopen build 1 \\(taken-over\\)`));
    } finally {
      await proxy.close();
      front = await startProxy(new URL(base), {}, frontPort);
    }
    const tasks = await api('GET', '/be/v1/tasks?appName=halfopen&type=dltar');
    expect(tasks.tasks).toHaveLength(1);
    expect(tasks.tasks[0]).toMatchObject({ status: 'succeeded', result: { sha256: tarDigest.digest('hex') } });
  }, 120_000);
});

describe('a push survives kill -9 of the server mid-upload (restarted on the same data folder and port 3 s later)', () => {
  let kdir: string;
  let kserver: ServerProcess | undefined;
  const env: Record<string, string> = {
    ROCKIT_ADMIN_TOKEN: ADMIN_TOKEN, ROCKIT_SCRYPT_COST: '1024', ROCKIT_WORKER_POLL_MS: '50', ROCKIT_TASK_MAX_ATTEMPTS: '1', ROCKIT_LOG_LEVEL: 'info',
  };

  afterAll(async () => {
    await kserver?.stop();
    if (kdir) await fs.rm(kdir, { recursive: true, force: true });
  });

  it('resumes through the restart and publishes the exact build; tasks cancel gives an upload up and frees the app', async () => {
    kdir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-e2e-kill-'));
    const data = path.join(kdir, 'data');
    const proxyPort = await freePort();
    Object.assign(env, { ROCKIT_PUBLIC_URL: `http://127.0.0.1:${proxyPort}` });
    kserver = await startServer(data, env);
    const kbase = kserver.address;
    const port = Number(new URL(kbase).port);
    const call = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<any> => {
      const res = await fetch(kbase + p, {
        method, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body !== undefined ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      return { httpStatus: res.status, ...(text ? (JSON.parse(text) as object) : {}) };
    };
    const created = await call('POST', '/adm/v1/orgs', { name: ORG }, { 'x-rockit-admin-token': ADMIN_TOKEN });
    expect(created.httpStatus).toBe(201);
    const password = created.admin.password as string;
    const kenv = { XDG_CONFIG_HOME: path.join(kdir, 'cfg'), HOME: kdir };
    const krockit = (argv: string[], stdin?: string) => runRockit(argv, kenv, stdin);

    const big = path.join(kdir, 'big');
    await fs.mkdir(path.join(big, 'data'), { recursive: true });
    await fs.writeFile(path.join(big, 'data', 'level.pak'), randomBytes(24 * 1024 * 1024));
    const tarDigest = createHash('sha256');
    for await (const c of packTar(await listFolder(big))) tarDigest.update(c as Buffer);

    // The CLI talks through a proxy that slows uploads to 4 MiB/s, so the kill lands mid-upload.
    const proxy = await startProxy(new URL(kbase), { uploadBytesPerSecond: 4 * 1024 * 1024 }, proxyPort);
    try {
      expect((await krockit(['login', '--server', proxy.url, '--org', ORG, '--user', 'admin', '--password-stdin'], password + '\n')).exitCode).toBe(0);
      expect((await krockit(['apps', 'create', 'kill', '--label', 'Kill'])).exitCode).toBe(0);
      const pushing = krockit(['push', big, `${ORG}/kill`, '--name', 'survivor']);
      // Once the server holds a part: kill -9, and back on the same port and data folder 3 s later.
      const session = await call('POST', '/be/v1/login', { orgName: ORG, username: 'admin', password }, {});
      const auth = (await call('POST', '/be/v1/auth', undefined, { 'x-rockit-besession-token': session.session.token })).auth.token as string;
      await waitFor('a stored part of the upload', 60_000, async () => {
        const t = await call('GET', '/be/v1/tasks?appName=kill&type=dltar', undefined, { 'x-rockit-beauth-token': auth });
        return t.tasks?.[0]?.progress > 0 ? true : undefined;
      });
      const exited = new Promise((r) => kserver!.proc.once('exit', r));
      kserver.proc.kill('SIGKILL');
      await exited;
      await new Promise((r) => setTimeout(r, 3000));
      kserver = await startServer(data, env, port);

      const push = await pushing;
      expect(push.exitCode, push.stderr).toBe(0);
      expect(push.stderr).toMatch(/resuming at \d/);
      expect(push.stdout).toMatch(new RegExp(`^published ${ORG}/kill build 1 \\(survivor\\)`));

      const auth2 = await (async () => {
        const s2 = await call('POST', '/be/v1/login', { orgName: ORG, username: 'admin', password }, {});
        return (await call('POST', '/be/v1/auth', undefined, { 'x-rockit-besession-token': s2.session.token })).auth.token as string;
      })();
      const tasks = await call('GET', '/be/v1/tasks?appName=kill&type=dltar', undefined, { 'x-rockit-beauth-token': auth2 });
      expect(tasks.tasks).toHaveLength(1);
      expect(tasks.tasks[0]).toMatchObject({ status: 'succeeded', result: { sha256: tarDigest.digest('hex') } });

      // An upload nobody finishes: push --no-wait is stopped by the server going away for good… here,
      // simply a build registered and left waiting; `rockit tasks cancel` ends it and frees the app.
      const waiting = await call('POST', '/be/v1/builds', { appName: 'kill' }, { 'x-rockit-beauth-token': auth2 });
      expect(waiting.httpStatus).toBe(202);
      expect((await call('GET', '/be/v1/apps/kill', undefined, { 'x-rockit-beauth-token': auth2 })).app.processing).toBe(true);
      const cancel = await krockit(['tasks', 'cancel', waiting.task.name]);
      expect(cancel.exitCode, cancel.stderr).toBe(0);
      expect(cancel.stdout).toContain(`task ${waiting.task.name} cancelled (expired)`);
      expect((await call('GET', '/be/v1/apps/kill', undefined, { 'x-rockit-beauth-token': auth2 })).app.processing).toBe(false);
      const again = await krockit(['tasks', 'cancel', tasks.tasks[0].name]);
      expect(again.exitCode).toBe(1);
      expect(again.stderr).toContain('invalid-state');
    } finally {
      await proxy.close();
    }
  }, 240_000);
});
