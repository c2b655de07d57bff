import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tarStream from 'tar-stream';
import { register, parseTarget } from './push.js';
import { fail, loggedInEnv, ok, runCli, startStandIn, withAuth, type Handler, type RecordedRequest, type Reply, type StandIn } from '../api/test-support/stand-in-server.js';
import type { TaskDto } from '@rockit/contract';

let dir: string;
let game: string;
const servers: StandIn[] = [];

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-push-'));
  game = path.join(dir, 'game');
  await fs.mkdir(path.join(game, 'data'), { recursive: true });
  await fs.writeFile(path.join(game, 'game.exe'), Buffer.alloc(1500, 7));
  await fs.writeFile(path.join(game, 'data', 'level.pak'), Buffer.from('level data'));
});
afterEach(async () => {
  while (servers.length) await servers.pop()!.close();
  await fs.rm(dir, { recursive: true, force: true });
});

async function untar(archive: Buffer): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const ex = tarStream.extract();
  ex.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    stream.on('end', () => {
      if (header.type === 'file') files.set(header.name, Buffer.concat(chunks).toString('utf8'));
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
    ex.end(archive);
  });
  return files;
}

/** A tar of these entries (tar-stream): files, or symlinks with `linkname`. */
async function makeTar(entries: Array<{ name: string; content?: Buffer; linkname?: string }>): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const e of entries) {
    if (e.linkname !== undefined) pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname });
    else pack.entry({ name: e.name, size: e.content!.length }, e.content!);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

interface Scenario {
  /** The status mkraw ends in, and its error. */
  mkraw?: { status: TaskDto['status']; error?: Record<string, unknown> };
  /** Where the upload goes: the API server itself (relative URL) or another origin. */
  uploadUrl?: string;
  uploadReply?: Reply;
}

/**
 * A scripted import: dltar (submitted → running → succeeded), then mkraw and deploy, each found
 * through the task list. An older import's mkraw (build 2) is listed first and must be skipped.
 */
function importServer(sc: Scenario) {
  const now = Math.floor(Date.now() / 1000);
  const polls = new Map<string, number>();
  const task = (name: string, type: string, status: TaskDto['status'], extra: Partial<TaskDto> = {}): TaskDto => ({
    name, type, status, appName: 'demo', buildId: 3, progress: status === 'succeeded' ? 1 : 0.5, attempts: 1, warnings: [], result: null, created: now, started: null, ended: null, error: null, ...extra,
  });
  const states: Record<string, TaskDto[]> = {
    t_dl: [task('t_dl', 'dltar', 'running'), task('t_dl', 'dltar', 'succeeded')],
    t_mk: [task('t_mk', 'mkraw', 'running'), task('t_mk', 'mkraw', sc.mkraw?.status ?? 'succeeded', { error: (sc.mkraw?.error ?? null) as TaskDto['error'] })],
    t_dp: [task('t_dp', 'deploy', 'succeeded')],
  };
  return (req: RecordedRequest): Reply => {
    if (req.method === 'POST' && req.path === '/be/v1/builds') {
      return ok({ task: task('t_dl', 'dltar', 'submitted'), upload: { url: sc.uploadUrl ?? '/be/v1/uploads/t_dl', method: 'PUT', expires: now + 3600 } }, 202);
    }
    if (req.method === 'PUT' && req.path === '/be/v1/uploads/t_dl') return sc.uploadReply ?? ok({});
    if (req.method === 'PATCH' && req.path === '/be/v1/tasks') return ok({ task: task('t_dl', 'dltar', 'expired') });
    const m = /^\/be\/v1\/tasks\/(\w+)$/.exec(req.path);
    if (m && states[m[1]]) {
      const n = polls.get(m[1]) ?? 0;
      polls.set(m[1], n + 1);
      return ok({ task: states[m[1]][Math.min(n, states[m[1]].length - 1)] });
    }
    if (req.path === '/be/v1/tasks') {
      const type = req.query.get('type');
      const list =
        type === 'mkraw'
          ? [task('t_old', 'mkraw', 'running', { buildId: 2 }), { ...states.t_mk[0], status: 'submitted' }]
          : type === 'deploy'
            ? [{ ...states.t_dp[0], status: 'submitted' }]
            : [];
      return ok({ total: list.length, offset: 0, limit: 100, tasks: list });
    }
    if (req.path === '/be/v1/apps/demo') {
      return ok({
        app: {
          name: 'demo', iCurBuild: 3, dxfName: 'b0003-t001',
          builds: [{ buildId: 1, buildName: '1.0.0' }, { buildId: 2, buildName: '1.0.1' }, { buildId: 3, buildName: '1.0.2' }],
          patches: [{ fromBuildId: 1, toBuildId: 3, sizeBytes: 2048 }, { fromBuildId: 2, toBuildId: 3, sizeBytes: 1024 }, { fromBuildId: 1, toBuildId: 2, sizeBytes: 9 }],
        },
      });
    }
    return fail(404, 'not-found', `no route ${req.method} ${req.path}`);
  };
}

async function setup(sc: Scenario = {}, wrap: (inner: Handler) => Handler = (inner) => inner) {
  // `wrap` sees every request first (the upload URL's GET and PUT carry no credentials on the real server).
  const api = await startStandIn(wrap(withAuth(importServer(sc))));
  servers.push(api);
  const env = await loggedInEnv(api.url, path.join(dir, 'cfg'));
  const run = (argv: string[], interruptAtOnce = false) => runCli([register], argv, { env, interruptAtOnce });
  return { api, run };
}

describe('rockit push', () => {
  it('streams a folder as a tar with its exact length, follows the pipeline and prints the release', async () => {
    const { api, run } = await setup();
    const r = await run(['push', game, 'acme/demo', '--name', '1.0.2']);
    expect(r.exitCode, r.stderr).toBe(0);

    expect(api.requests.find((q) => q.path === '/be/v1/builds')?.json).toEqual({ appName: 'demo', buildName: '1.0.2' });
    const put = api.requests.find((q) => q.method === 'PUT')!;
    expect(Number(put.headers['content-length'])).toBe(put.body.length);
    expect(put.headers['transfer-encoding']).toBeUndefined();
    expect(put.headers['x-rockit-beauth-token']).toBe('auth-1'); // same origin: credentials go along
    expect(await untar(put.body)).toEqual(new Map([['data/level.pak', 'level data'], ['game.exe', '\u0007'.repeat(1500)]]));

    // The older import's mkraw (build 2) was skipped; ours was followed to the end.
    const polled = api.requests.filter((q) => q.path.startsWith('/be/v1/tasks/')).map((q) => q.path);
    expect(polled).not.toContain('/be/v1/tasks/t_old');
    expect(polled).toContain('/be/v1/tasks/t_mk');
    expect(r.stderr).toMatch(/dltar\s+t_dl\s+succeeded/);
    expect(r.stderr).toMatch(/deploy\s+t_dp\s+succeeded/);
    expect(r.stdout).toBe('published acme/demo build 3 (1.0.2), dxf b0003-t001; patches from build 1 (2.0 KiB), 2 (1.0 KiB)\n');
  });

  it('sends a tar file unchanged to another origin without credentials, and reports JSON', async () => {
    const bucket = await startStandIn(() => ({ status: 200, text: '' }));
    servers.push(bucket);
    const { run } = await setup({ uploadUrl: `${bucket.url}/presigned/put?sig=abc` });
    const tar = path.join(dir, 'build.tar');
    const tarBytes = await makeTar([{ name: 'game.exe', content: Buffer.alloc(9000, 3) }]);
    await fs.writeFile(tar, tarBytes);
    const r = await run(['push', tar, 'acme/demo', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const put = bucket.requests[0];
    expect(put.path).toBe('/presigned/put');
    expect(put.query.get('sig')).toBe('abc');
    expect(put.body.equals(tarBytes)).toBe(true);
    expect(Object.keys(put.headers).filter((h) => h.startsWith('x-rockit'))).toEqual([]);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ status: 'success', appName: 'demo', uploadedBytes: tarBytes.length, release: { iCurBuild: 3, dxfName: 'b0003-t001', buildName: '1.0.2' } });
    expect(out.tasks.map((t: TaskDto) => `${t.type}:${t.status}`)).toEqual(['dltar:succeeded', 'mkraw:succeeded', 'deploy:succeeded']);
    expect(out.release.patches).toHaveLength(2);
  });

  it('exits 1 with the failed task and its detail fields', async () => {
    const { api, run } = await setup({
      mkraw: { status: 'failed', error: { message: 'cannot read file', fileReadFailed: { filename: 'data/level.pak', typeExpected: 'file', typeDetected: 'symlink' } } },
    });
    const r = await run(['push', game, 'acme/demo']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('task t_mk (mkraw) failed: cannot read file');
    expect(r.stderr).toContain('fileReadFailed.filename: data/level.pak');
    expect(r.stderr).toContain('fileReadFailed.typeDetected: symlink');
    expect(api.requests.some((q) => q.query.get('type') === 'deploy')).toBe(false);

    const j = await run(['push', game, 'acme/demo', '--json']);
    expect(j.exitCode).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({ status: 'error', error: 'task-failed', task: { name: 't_mk', error: { fileReadFailed: { filename: 'data/level.pak' } } } });
  });

  it('returns after the upload with --no-wait', async () => {
    const { api, run } = await setup();
    const r = await run(['push', game, 'acme/demo', '--no-wait']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('rockit tasks --app demo');
    expect(api.requests.some((q) => q.path.startsWith('/be/v1/tasks'))).toBe(false);
  });

  it('reports a refused upload with the API error and expires the upload task', async () => {
    const { api, run } = await setup({ uploadReply: fail(413, 'payload-too-large', 'upload over the limit') });
    const r = await run(['push', game, 'acme/demo']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('upload of task t_dl failed: upload over the limit');
    expect(r.stderr).toContain('payload-too-large (HTTP 413)');
    expect(api.requests.find((q) => q.method === 'PATCH')?.json).toEqual({ name: 't_dl', expire: true });
    expect(r.stderr).toContain('task t_dl expired');
  });

  it('stops the upload on Ctrl-C, keeps the upload open and says how to resume or cancel it', async () => {
    const { api, run } = await setup();
    const r = await run(['push', game, 'acme/demo'], true);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('upload of task t_dl stopped: interrupted');
    expect(r.stderr).toContain('hint: resume with: rockit push --resume t_dl   (or give it up: rockit tasks cancel t_dl)');
    expect(api.requests.some((q) => q.method === 'PATCH')).toBe(false);
    expect(api.requests.some((q) => q.path.startsWith('/be/v1/tasks/'))).toBe(false);
    const kept = JSON.parse(await fs.readFile(path.join(dir, 'cfg', 'rockit', 'uploads.json'), 'utf8'));
    expect(kept.uploads.t_dl).toMatchObject({ taskName: 't_dl', orgName: 'acme', appName: 'demo', source: game });
    expect((await fs.stat(path.join(dir, 'cfg', 'rockit', 'uploads.json'))).mode & 0o777).toBe(0o600);
  });

  it('when the server stays away, gives up without expiring the upload; push --resume goes on where the server is', async () => {
    // The server answers 503 to every PUT and every "how much arrived?" until it is "back".
    let back = false;
    let received: Buffer = Buffer.alloc(0);
    const { api, run } = await setup({}, (inner) => (req) => {
      if (req.path === '/be/v1/uploads/t_dl' && !back) return fail(503, 'unavailable', 'restarting');
      if (req.method === 'GET' && req.path === '/be/v1/uploads/t_dl') {
        return ok({ upload: { taskName: 't_dl', state: 'waiting', receivedBytes: 512, sizeBytes: null, expires: 0 } });
      }
      if (req.method === 'PUT' && req.path === '/be/v1/uploads/t_dl') {
        received = req.body;
        expect(req.headers['content-range']).toMatch(/^bytes 512-\d+\/\d+$/);
        return ok({ upload: { taskName: 't_dl', state: 'received', receivedBytes: 0, sizeBytes: null, expires: 0 } });
      }
      return inner(req);
    });
    const first = await run(['push', game, 'acme/demo', '--name', '1.0.2']);
    expect(first.exitCode).toBe(1);
    expect(first.stderr).toContain('the server does not answer');
    expect(first.stderr).toContain('gave up after 10 tries');
    expect(first.stderr).toContain('rockit push --resume t_dl');
    expect(api.requests.some((q) => q.method === 'PATCH')).toBe(false);

    back = true;
    const resumed = await run(['push', '--resume', 't_dl']);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain('resuming task t_dl: the server holds 512 B');
    expect(resumed.stdout).toContain('published acme/demo build 3 (1.0.2)');
    expect(received.length).toBeGreaterThan(0);
    // Complete: the record is gone, a second resume has nothing to go on with.
    const again = await run(['push', '--resume', 't_dl']);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain('no upload of task t_dl was started on this machine');
  });

  it('push --resume refuses a source that changed since the upload started', async () => {
    const { run } = await setup({}, (inner) => (req) => (req.path === '/be/v1/uploads/t_dl' ? fail(503, 'unavailable', 'down') : inner(req)));
    const first = await run(['push', game, 'acme/demo']);
    expect(first.exitCode).toBe(1);
    // Same size, same second: only the sub-second modification time tells.
    await new Promise((r) => setTimeout(r, 20));
    await fs.writeFile(path.join(game, 'data', 'level.pak'), Buffer.from('other data'));
    const resumed = await run(['push', '--resume', 't_dl']);
    expect(resumed.exitCode).toBe(1);
    expect(resumed.stderr).toContain('changed since the upload of task t_dl started');
  });

  it('refuses another organization and a malformed target before uploading', async () => {
    const { api, run } = await setup();
    const r = await run(['push', game, 'other/demo']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('logged in to organization acme');
    expect(api.requests.some((q) => q.path === '/be/v1/builds')).toBe(false);
    expect(() => parseTarget('demo')).toThrow(/<org>\/<app>/);
    expect(() => parseTarget('a/b/c')).toThrow(/<org>\/<app>/);
    expect(parseTarget('acme/demo')).toEqual({ orgName: 'acme', appName: 'demo' });
  });
});

describe('rockit push: checks before uploading', () => {
  /** Runs a push that must be refused before any byte leaves: no build submitted, no PUT. */
  async function refused(argv: string[], message: RegExp): Promise<void> {
    const { api, run } = await setup();
    const r = await run(argv);
    expect(r.exitCode, r.stdout).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a user error, not a stack trace
    expect(api.requests.some((q) => q.path === '/be/v1/builds')).toBe(false);
    expect(api.requests.some((q) => q.method === 'PUT')).toBe(false);
  }

  it('refuses an empty folder, and one whose only files are ignored, naming the path', async () => {
    const empty = path.join(dir, 'empty');
    await fs.mkdir(path.join(empty, 'sub'), { recursive: true });
    await refused(['push', empty, 'acme/demo'], new RegExp(`${empty.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the folder holds no file`));
    await refused(['push', game, 'acme/demo', '--ignore', '*.exe', '--ignore', 'data'], /game: the folder holds no file/);
  });

  it('refuses a symlink that points outside the build, naming the path and the link', async () => {
    await fs.symlink('../../etc/passwd', path.join(game, 'data', 'escape'));
    await refused(['push', game, 'acme/demo'], /game: symlink points outside the root: "data\/escape"/);
  });

  it('refuses a file that is not a tar, an empty file, a tar without files and a tar with an escaping symlink', async () => {
    const notTar = path.join(dir, 'build.zip');
    await fs.writeFile(notTar, Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(2000, 1)]));
    await refused(['push', notTar, 'acme/demo'], /build\.zip: not a tar file/);
    const emptyFile = path.join(dir, 'empty.tar');
    await fs.writeFile(emptyFile, '');
    await refused(['push', emptyFile, 'acme/demo'], /empty\.tar: not a tar file \(empty file\)/);
    const noFiles = path.join(dir, 'nofiles.tar');
    await fs.writeFile(noFiles, await makeTar([{ name: 'link', linkname: 'x' }]));
    await refused(['push', noFiles, 'acme/demo'], /nofiles\.tar: the tar holds no file/);
    const escaping = path.join(dir, 'escaping.tar');
    await fs.writeFile(escaping, await makeTar([{ name: 'a.bin', content: Buffer.from('x') }, { name: 'up', linkname: '../../outside' }]));
    await refused(['push', escaping, 'acme/demo'], /escaping\.tar: symlink points outside the root/);
  });

  it('leaves out --ignore patterns and .rockitignore entries (never sending .rockitignore itself)', async () => {
    await fs.writeFile(path.join(game, 'debug.log'), 'log');
    await fs.mkdir(path.join(game, 'data', 'cache'));
    await fs.writeFile(path.join(game, 'data', 'cache', 'x.tmp'), 'tmp');
    await fs.writeFile(path.join(game, '.rockitignore'), '# build leftovers\n*.log\n');
    const { api, run } = await setup();
    const r = await run(['push', game, 'acme/demo', '--ignore', 'data/cache']);
    expect(r.exitCode, r.stderr).toBe(0);
    const put = api.requests.find((q) => q.method === 'PUT')!;
    expect([...(await untar(put.body)).keys()].sort()).toEqual(['data/level.pak', 'game.exe']);
  });
});
