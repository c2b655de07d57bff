import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { register as registerApps } from './apps.js';
import { register as registerDeployments } from './deployments.js';
import { register as registerTasks } from './tasks.js';
import { fail, loggedInEnv, ok, runCli, startStandIn, withAuth, type Handler, type StandIn } from '../api/test-support/stand-in-server.js';

let dir: string;
let standIn: StandIn | null = null;
let env: NodeJS.ProcessEnv;
const NOW_MS = 1_800_000_000_000;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-apps-'));
});
afterEach(async () => {
  await standIn?.close();
  standIn = null;
  await fs.rm(dir, { recursive: true, force: true });
});

async function serve(handler: Handler): Promise<StandIn> {
  standIn = await startStandIn(withAuth(handler));
  env = await loggedInEnv(standIn.url, dir);
  return standIn;
}

const run = (argv: string[]) => runCli([registerApps, registerDeployments, registerTasks], argv, { env, now: () => NOW_MS });

describe('rockit apps', () => {
  it('creates an app with the documented body', async () => {
    const s = await serve((req) => ok({ app: { ...(req.json as object), iCurBuild: null } }, 201));
    const r = await run(['apps', 'create', 'demo', '--label', 'Demo Game', '--max-builds', '3', '--deployments', 'cdn_eu, cdn_us']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('created app demo\n');
    const post = s.requests.find((q) => q.method === 'POST' && q.path === '/be/v1/apps');
    expect(post?.json).toEqual({ name: 'demo', label: 'Demo Game', maxBuilds: 3, deployments: ['cdn_eu', 'cdn_us'] });
    expect(post?.headers['content-type']).toBe('application/json');
  });

  it('rejects bad option values before calling the server', async () => {
    const s = await serve(() => ok({}));
    const r = await run(['apps', 'create', 'demo', '--label', 'D', '--max-builds', '3x']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('--max-builds must be a positive integer');
    const r2 = await run(['apps', 'create', 'demo']);
    expect(r2.exitCode).not.toBe(0);
    expect(r2.stderr).toContain("required option '--label <label>'");
    expect(s.requests).toHaveLength(0);
  });

  it('shows a server refusal with its error name', async () => {
    await serve(() => fail(409, 'already-exists', 'app demo exists', { param: 'name' }));
    const r = await run(['apps', 'create', 'demo', '--label', 'D']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('already-exists (HTTP 409), param: name');
    const j = await run(['apps', 'create', 'demo', '--label', 'D', '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ status: 'error', error: 'already-exists', httpStatus: 409, param: 'name' });
  });

  it('lists apps as a table and as JSON', async () => {
    const apps = [
      { name: 'demo', label: 'Demo', maxBuilds: 5, iCurBuild: 3, dxfName: 'b0003-t002', builds: [{ buildId: 2 }, { buildId: 3 }], deployments: [], updated: 1_799_999_880 },
      { name: 'broken', label: 'Broken', maxBuilds: 2, iCurBuild: null, builds: [], deployments: ['cdn_eu'], error: { task: 't_9', type: 'deploy', message: 'x' } },
    ];
    const s = await serve(() => ok({ total: 2, offset: 0, limit: 1000, apps }));
    const r = await run(['apps', 'list']);
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+LABEL\s+BUILD\s+DXF\s+BUILDS\s+DEPLOYMENTS\s+STATE\s+UPDATED$/);
    expect(lines[1]).toMatch(/^demo\s+Demo\s+3\s+b0003-t002\s+2\/5\s+\(all\)\s+ok\s+2m$/);
    expect(lines[2]).toMatch(/^broken\s+Broken\s+-\s+-\s+0\/2\s+cdn_eu\s+error \(deploy t_9\)\s+-$/);
    const j = await run(['apps', 'list', '--json']);
    expect(JSON.parse(j.stdout)).toEqual(apps);
    // Session → auth token exchange happened once per invocation, not per request.
    expect(s.requests.filter((q) => q.path === '/be/v1/auth')).toHaveLength(2);
  });
});

describe('rockit deployments create', () => {
  it('sends an fs deployment', async () => {
    const s = await serve((req) => ok({ deployment: req.json }, 201));
    const r = await run(['deployments', 'create', 'local', '--type', 'fs', '--path', '/srv/cdn', '--origin-prefix', 'games']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(s.requests.find((q) => q.path === '/be/v1/deployments')?.json).toEqual({ name: 'local', type: 'fs', originPrefix: 'games', fs: { path: '/srv/cdn' } });
  });

  it('sends an s3 deployment, the secret from the environment if not given', async () => {
    const s = await serve((req) => ok({ deployment: { name: (req.json as { name: string }).name, type: 's3' } }, 201));
    env = { ...env, ROCKIT_S3_SECRET_ACCESS_KEY: 'from-env' };
    const r = await run([
      'deployments', 'create', 'cdn_eu', '--type', 's3', '--endpoint', 's3.eu-central-1.amazonaws.com', '--region', 'eu-central-1',
      '--bucket', 'games', '--access-key-id', 'AKIA1', '--force-path-style',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(s.requests.find((q) => q.path === '/be/v1/deployments')?.json).toEqual({
      name: 'cdn_eu',
      type: 's3',
      s3: { endpoint: 's3.eu-central-1.amazonaws.com', region: 'eu-central-1', bucket: 'games', accessKeyId: 'AKIA1', secretAccessKey: 'from-env', forcePathStyle: true },
    });
  });

  it('names missing and misplaced options', async () => {
    const s = await serve(() => ok({}));
    const r = await run(['deployments', 'create', 'x', '--type', 's3', '--region', 'r']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('--type s3 needs --endpoint, --bucket, --access-key-id, --secret-access-key');
    const r2 = await run(['deployments', 'create', 'x', '--type', 'fs', '--path', '/p', '--bucket', 'b']);
    expect(r2.stderr).toContain('--bucket apply to --type s3 only');
    const r3 = await run(['deployments', 'create', 'x', '--type', 'ftp']);
    expect(r3.exitCode).not.toBe(0);
    expect(s.requests).toHaveLength(0);
  });
});

describe('rockit tasks', () => {
  it('shows recent tasks with the filters passed to the server', async () => {
    const tasks = [
      { name: 't_3', type: 'mkraw', status: 'failed', appName: 'demo', buildId: 3, progress: 0.5, created: 1_799_999_990, error: { message: 'file unreadable', fileReadFailed: { filename: 'a' } } },
      { name: 't_2', type: 'dltar', status: 'succeeded', appName: 'demo', buildId: 3, progress: 1, created: 1_799_992_800, error: null },
    ];
    const s = await serve(() => ok({ total: 7, offset: 0, limit: 2, tasks }));
    const r = await run(['tasks', '--app', 'demo', '--status', 'failed', '--limit', '2']);
    expect(r.exitCode, r.stderr).toBe(0);
    const q = s.requests.find((x) => x.path === '/be/v1/tasks')!.query;
    expect(Object.fromEntries(q)).toEqual({ appName: 'demo', status: 'failed', 'order[]': '-created', limit: '2' });
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+TYPE\s+STATUS\s+APP\s+BUILD\s+PROGRESS\s+AGE\s+ERROR$/);
    expect(lines[1]).toMatch(/^t_3\s+mkraw\s+failed\s+demo\s+3\s+50%\s+10s\s+file unreadable$/);
    expect(lines[2]).toMatch(/^t_2\s+dltar\s+succeeded\s+demo\s+3\s+100%\s+2h$/);
    expect(lines[3]).toBe('(2 of 7; use --limit for more)');
  });

  it('rejects an unknown status', async () => {
    const s = await serve(() => ok({}));
    const r = await run(['tasks', '--status', 'done']);
    expect(r.exitCode).not.toBe(0);
    expect(s.requests).toHaveLength(0);
  });

  it('uses API-key credentials from the environment', async () => {
    standIn = await startStandIn((req) =>
      req.headers['x-rockit-api-key'] === 'k' ? ok({ total: 0, offset: 0, limit: 20, tasks: [] }) : fail(401, 'token-missing', 'no'),
    );
    env = { XDG_CONFIG_HOME: dir, HOME: dir, ROCKIT_SERVER: standIn.url, ROCKIT_ORG: 'acme', ROCKIT_USER: 'ci', ROCKIT_API_KEY: 'k' };
    const r = await run(['tasks', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });
});
