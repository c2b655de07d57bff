// End to end release control (issue 13 item 5) through the real binaries: a staged push
// (`rockit push --no-live`), `rockit builds`, and `rockit apps set-live` for a promotion and a
// rollback, each checked on every origin: the depot (/cdn) and an fs deployment.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runRockit, startServer, type ServerProcess } from './test-support/processes.js';

const ADMIN_TOKEN = 'e2e-release-admin-token-0123456789abcd';
const ORG = 'acme';

let dir: string;
let server: ServerProcess;
let base: string;
let cliEnv: Record<string, string>;
const origin = () => path.join(dir, 'origin');
const series = () => path.join(dir, 'series');
const rockit = (argv: string[], stdin?: string) => runRockit(argv, cliEnv, stdin);

/** release.json as the depot serves it and as the fs deployment holds it. */
async function releases(): Promise<{ depot: any; fs: any }> {
  const depot = await fetch(`${base}/cdn/dxf/${ORG}/demo/release.json`).then((r) => r.json());
  const onFs = JSON.parse(await fs.readFile(path.join(origin(), `dxf/${ORG}/demo/release.json`), 'utf8'));
  return { depot, fs: onFs };
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-e2e-release-'));
  await fs.mkdir(origin());
  server = await startServer(path.join(dir, 'data'), {
    ROCKIT_ADMIN_TOKEN: ADMIN_TOKEN,
    ROCKIT_SCRYPT_COST: '1024',
    ROCKIT_WORKER_POLL_MS: '50',
    ROCKIT_GRACE_PERIOD_SECONDS: '1',
    ROCKIT_TASK_MAX_ATTEMPTS: '1',
  });
  base = server.address;
  cliEnv = { XDG_CONFIG_HOME: path.join(dir, 'cfg'), HOME: dir };
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('release control through rockit-edge serve and the rockit command', () => {
  it('stages, promotes and rolls back; release.json changes on the depot and the fs deployment', async () => {
    const created = await fetch(`${base}/adm/v1/orgs`, {
      method: 'POST', headers: { 'x-rockit-admin-token': ADMIN_TOKEN, 'content-type': 'application/json' }, body: JSON.stringify({ name: ORG }),
    }).then((r) => r.json() as Promise<{ admin: { password: string } }>);
    const login = await rockit(['login', '--server', base, '--org', ORG, '--user', 'admin', '--password-stdin'], created.admin.password + '\n');
    expect(login.exitCode, login.stderr).toBe(0);
    expect((await rockit(['deployments', 'create', 'cdn_fs', '--type', 'fs', '--path', origin()])).exitCode).toBe(0);
    expect((await rockit(['apps', 'create', 'demo', '--label', 'Demo'])).exitCode).toBe(0);
    const gen = await rockit(['gamegen', 'build', '--seed', '9', '--size', '2MB', '--versions', '2', '--out', series()]);
    expect(gen.exitCode, gen.stderr).toBe(0);

    const p1 = await rockit(['push', path.join(series(), 'v1'), `${ORG}/demo`, '--name', '1.0']);
    expect(p1.exitCode, p1.stderr).toBe(0);
    let rel = await releases();
    expect([rel.depot.buildId, rel.fs.buildId]).toEqual([1, 1]);

    // Staged: published everywhere, but release.json stays on build 1.
    const p2 = await rockit(['push', path.join(series(), 'v2'), `${ORG}/demo`, '--name', '2.0', '--no-live']);
    expect(p2.exitCode, p2.stderr).toBe(0);
    expect(p2.stdout).toMatch(/^staged acme\/demo build 2; build 1 stays live\. Make it live with: rockit apps set-live demo 2\n$/);
    rel = await releases();
    expect([rel.depot.buildId, rel.fs.buildId]).toEqual([1, 1]);
    expect(existsSync(path.join(origin(), `dxf/${ORG}/demo/0002`))).toBe(true);

    const list = await rockit(['builds', 'demo']);
    expect(list.exitCode, list.stderr).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^BUILD\s+NAME\s+SIZE\s+FILES\s+CREATED\s+LIVE$/);
    expect(lines[1]).toMatch(/^2\s+2\.0\s+\S+ \S+\s+\d+\s+.*\S$/);
    expect(lines[1]).not.toMatch(/live$/);
    expect(lines[2]).toMatch(/^1\s+1\.0\s.*live$/);
    const json = JSON.parse((await rockit(['builds', 'demo', '--json'])).stdout);
    expect(json.map((b: any) => [b.buildId, b.live])).toEqual([[2, false], [1, true]]);

    // Promote build 2: release.json names it, with the patch from build 1, on both origins.
    const live2 = await rockit(['apps', 'set-live', 'demo', '2']);
    expect(live2.exitCode, live2.stderr).toBe(0);
    expect(live2.stdout).toMatch(/build 2 of demo is live/);
    rel = await releases();
    for (const r of [rel.depot, rel.fs]) expect(r).toMatchObject({ buildId: 2, buildName: '2.0', patches: [{ fromBuildId: 1, toBuildId: 2 }] });

    // Roll back to build 1: both origins name build 1 again (no patch leads back to it).
    const back = await rockit(['apps', 'set-live', 'demo', '1']);
    expect(back.exitCode, back.stderr).toBe(0);
    rel = await releases();
    for (const r of [rel.depot, rel.fs]) expect(r).toMatchObject({ buildId: 1, buildName: '1.0', patches: [] });
    const image = `${base}/cdn/${rel.depot.image.path}${rel.depot.image.manifest}`;
    expect((await fetch(image)).status).toBe(200);

    // A build that is not kept: the server's refusal, without a stack trace.
    const bad = await rockit(['apps', 'set-live', 'demo', '9']);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/iCurBuild/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  }, 120_000);

  it('sets up a CI pipeline without curl: publisher role, machine user, API keys; the machine pushes and sets live', async () => {
    const role = await rockit(['roles', 'create', 'publisher', '--publisher']);
    expect(role.exitCode, role.stderr).toBe(0);
    expect(role.stdout).toBe('created role publisher (apps=6,tasks=2)\n');
    const machine = await rockit(['users', 'create-machine', 'ci', '--roles', 'publisher']);
    expect(machine.exitCode, machine.stderr).toBe(0);
    const vars = Object.fromEntries(machine.stdout.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
    expect(Object.keys(vars)).toEqual(['ROCKIT_SERVER', 'ROCKIT_ORG', 'ROCKIT_USER', 'ROCKIT_API_KEY']);
    expect(vars).toMatchObject({ ROCKIT_ORG: ORG, ROCKIT_USER: 'ci' });
    expect(machine.stderr).toMatch(/shown only now/);

    // The CI job: nothing but the variables (a fresh HOME: no stored login).
    const ciEnv = { ...vars, XDG_CONFIG_HOME: path.join(dir, 'ci-cfg'), HOME: path.join(dir, 'ci-home') };
    const push = await runRockit(['push', path.join(series(), 'v2'), `${ORG}/demo`, '--name', '2.1', '--no-live'], ciEnv);
    expect(push.exitCode, push.stderr).toBe(0);
    expect(push.stdout).toMatch(/^staged acme\/demo build 3; build 1 stays live/);
    const live = await runRockit(['apps', 'set-live', 'demo', '3'], ciEnv);
    expect(live.exitCode, live.stderr).toBe(0);
    expect((await releases()).fs).toMatchObject({ buildId: 3, buildName: '2.1' });
    // The publisher role cannot create apps.
    const denied = await runRockit(['apps', 'create', 'other', '--label', 'x'], ciEnv);
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr).toMatch(/forbidden.*permission=apps\.create/);

    // Key rotation: a second key works, the revoked first one does not.
    const second = await rockit(['apikeys', 'create', 'ci', '--json']);
    expect(second.exitCode, second.stderr).toBe(0);
    const key2 = JSON.parse(second.stdout) as { id: string; key: string };
    const firstId = /key id (\S+)/.exec(machine.stderr)![1];
    const revoke = await rockit(['apikeys', 'revoke', firstId]);
    expect(revoke.exitCode, revoke.stderr).toBe(0);
    expect((await runRockit(['builds', 'demo'], ciEnv)).exitCode).toBe(1);
    const withSecond = await runRockit(['builds', 'demo'], { ...ciEnv, ROCKIT_API_KEY: key2.key });
    expect(withSecond.exitCode, withSecond.stderr).toBe(0);
    expect(withSecond.stdout).toMatch(/^3\s+2\.1\s.*live$/m);
  }, 120_000);
});
