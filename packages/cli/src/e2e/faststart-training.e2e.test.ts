// Issue 14 item 3 through the real binaries (`rockit-edge serve` on SQLite and the `rockit`
// command): a generated build is pushed, generated play sessions are uploaded as traces with a
// download key (`rockit trace upload`), trace processing starts by itself once nTracesReliable (12)
// traces arrived, the release moves to the trained image `b0001-t001`, `rockit faststart simulate`
// on held-out sessions shows the trained image beating the untrained one, and the keyed app's /cdn
// refuses a request without a token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeTrace, encodeTraceNdjson } from '@rockit/engine';
import { runRockit, startServer, waitFor, type ServerProcess, callJson } from './test-support/processes.js';

const ADMIN_TOKEN = 'e2e-training-admin-token-0123456789';
const ORG = 'trainco';
const APP = 'game';
const SESSIONS = 20;
const TRAINING = 14;

let dir: string;
let dataDir: string;
let server: ServerProcess;
let base: string;
let authToken: string;
let cliEnv: Record<string, string>;

const api = (method: string, p: string, body?: unknown, headers: Record<string, string> = { 'x-rockit-beauth-token': authToken }): Promise<any> =>
  callJson(base, method, p, body, headers);
const rockit = (argv: string[], stdin?: string) => runRockit(argv, cliEnv, stdin);

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-e2e-training-'));
  dataDir = path.join(dir, 'data');
  server = await startServer(dataDir, {
    ROCKIT_ADMIN_TOKEN: ADMIN_TOKEN,
    ROCKIT_SCRYPT_COST: '1024',
    ROCKIT_WORKER_POLL_MS: '50',
    ROCKIT_TASK_MAX_ATTEMPTS: '2',
    ROCKIT_LOG_LEVEL: 'info',
  });
  base = server.address;
  cliEnv = { XDG_CONFIG_HOME: path.join(dir, 'cfg'), HOME: dir };
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** The depot's copy of an image folder (the server's fs blob store): what /cdn serves. */
const installDir = (): string => path.join(dir, 'install');
const jsonLast = (stdout: string): any => JSON.parse(stdout.trim().split('\n').at(-1) ?? 'null');
const depotImage = (imagePath: string): string => path.join(dataDir, 'blobs', 'cdn', ...imagePath.split('/').filter(Boolean));

describe('FastStart training through rockit-edge serve and the rockit command', () => {
  let key: string;
  let token: string;
  const heldOut: string[] = [];

  it('pushes a generated build, uploads 14 generated sessions with a download key; processing starts by itself and publishes b0001-t001', async () => {
    const created = await api('POST', '/adm/v1/orgs', { name: ORG }, { 'x-rockit-admin-token': ADMIN_TOKEN });
    expect(created.httpStatus).toBe(201);
    const session = await api('POST', '/be/v1/login', { orgName: ORG, username: 'admin', password: created.admin.password }, {});
    authToken = (await api('POST', '/be/v1/auth', undefined, { 'x-rockit-besession-token': session.session.token })).auth.token;
    const login = await rockit(['login', '--server', base, '--org', ORG, '--user', 'admin', '--password-stdin'], created.admin.password + '\n');
    expect(login.exitCode, login.stderr).toBe(0);
    expect((await rockit(['apps', 'create', APP, '--label', 'Game'])).exitCode).toBe(0);

    const series = path.join(dir, 'series');
    const gen = await rockit(['gamegen', 'build', '--seed', '11', '--size', '6MB', '--versions', '2', '--json', '--out', series]);
    expect(gen.exitCode, gen.stderr).toBe(0);
    const push = await rockit(['push', path.join(series, 'v1'), `${ORG}/${APP}`, '--name', '1.0']);
    expect(push.exitCode, push.stderr).toBe(0);
    await waitFor('build 1 published', 120_000, async () => ((await api('GET', `/be/v1/apps/${APP}`)).app?.iCurBuild === 1 ? true : undefined));

    const sessionsDir = path.join(dir, 'sessions');
    const sess = await rockit(['gamegen', 'sessions', '--build', path.join(series, 'v1'), '--out', sessionsDir, '--count', String(SESSIONS), '--seed', '5', '--json']);
    expect(sess.exitCode, sess.stderr).toBe(0);
    const description = JSON.parse(sess.stdout) as { sessions: Array<{ file: string }> };
    expect(description.sessions).toHaveLength(SESSIONS);

    // The generator names its own org and app: the sessions are rewritten for this app (NDJSON form).
    const upload: string[] = [];
    for (const [i, s] of description.sessions.entries()) {
      const trace = decodeTrace(await fs.readFile(path.join(sessionsDir, s.file)));
      trace.header = { ...trace.header, orgName: ORG, appName: APP, buildId: 1, dxfName: 'b0001-t000' };
      const file = path.join(dir, 'upload', `s${String(i).padStart(2, '0')}.ndjson`);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, encodeTraceNdjson(trace));
      (i < TRAINING ? upload : heldOut).push(file);
    }

    const k = await rockit(['keys', 'create', APP, '--label', 'launcher', '--json']);
    expect(k.exitCode, k.stderr).toBe(0);
    key = (JSON.parse(k.stdout) as { key: string }).key;
    // A player installs build 1 before any training: the untrained variant b0001-t000.
    const inst = await rockit(['install', base, `${ORG}/${APP}`, '--to', installDir(), '--key', key, '--json']);
    expect(inst.exitCode, inst.stderr).toBe(0);
    expect(jsonLast(inst.stdout)).toMatchObject({ build: { buildId: 1, dxfName: 'b0001-t000' } });
    // nothing processed yet; the defaults: auto, 12 traces.
    expect((await api('GET', `/be/v1/trainings/${APP}`)).training).toMatchObject({ nTracesReliable: 12, auto: true, traces: 0, lastProcessed: null });

    const up = await rockit(['trace', 'upload', ...upload, '--server', base, '--org', ORG, '--app', APP, '--key', key, '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    expect(JSON.parse(up.stdout)).toHaveLength(TRAINING);

    // Processing started by itself at the 12th trace (no trigger): exactly one trace task.
    const done = await waitFor('trace processing', 180_000, async () => {
      const tasks = (await api('GET', `/be/v1/tasks?appName=${APP}&type=trace`)).tasks as any[];
      return tasks.length > 0 && tasks.every((x) => !['submitted', 'running'].includes(x.status)) ? tasks : undefined;
    });
    expect(done).toHaveLength(1);
    expect(done[0].status, JSON.stringify(done[0].error)).toBe('succeeded');
    expect(done[0].result).toMatchObject({ buildId: 1, dxfName: 'b0001-t001', improved: true });
    expect(done[0].result.traces).toBeGreaterThanOrEqual(12);

    const auth = await api('POST', '/client/v1/auth', { orgName: ORG, appName: APP, key }, {});
    expect(auth.httpStatus).toBe(200);
    token = auth.auth.token;
    const release = await waitFor('release b0001-t001', 120_000, async () => {
      const r = await fetch(`${base}/cdn/dxf/${ORG}/${APP}/release.json`, { headers: { 'x-rockit-download-token': token } });
      const j = r.status === 200 ? ((await r.json()) as any) : undefined;
      return j?.dxfName === 'b0001-t001' ? j : undefined;
    });
    expect(release.image.path).toBe(`dxf/${ORG}/${APP}/0001/b0001-t001/`);

    const training = (await api('GET', `/be/v1/trainings/${APP}`)).training;
    expect(training).toMatchObject({ traces: TRAINING, tracesSinceLastImage: TRAINING - done[0].result.tracesStored });
    expect(training.lastProcessed).toBeTypeOf('number');
    expect(training.quality.coverage).toBeGreaterThan(0.9);
    for (const b of ['25Mbit', '100Mbit', '1Gbit']) expect(training.quality.preloadBytes[b]).toBeTypeOf('number');
    expect((await api('GET', `/be/v1/apps/${APP}`)).app).toMatchObject({ iCurBuild: 1, dxfName: 'b0001-t001' });
  }, 400_000);

  it('rockit faststart simulate on the held-out sessions: the trained image beats the untrained one', async () => {
    const simulate = async (dxf: string) => {
      const r = await rockit(['faststart', 'simulate', '--image', depotImage(`dxf/${ORG}/${APP}/0001/${dxf}/`), '--sessions', ...heldOut, '--bandwidth', '25,100,1000', '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as any;
    };
    // The replaced variant is still in the depot for the grace period.
    const untrained = await simulate('b0001-t000');
    const trained = await simulate('b0001-t001');
    expect(untrained.image.hasProfile).toBe(false);
    expect(trained.image.hasProfile).toBe(true);
    expect(trained.sessions).toHaveLength(SESSIONS - TRAINING);
    for (const b of ['25Mbit', '100Mbit', '1000Mbit']) {
      const u = untrained.summary[b];
      const t = trained.summary[b];
      // Preload that avoids every stall of a held-out session, and the launcher's wait with priority fetch.
      expect(t.medianNoStallPreloadBytes, b).toBeLessThan(u.medianNoStallPreloadBytes);
      expect(t.medianWaitMs.priorityFetch, b).toBeLessThanOrEqual(u.medianWaitMs.priorityFetch);
    }
  }, 120_000);

  it('the keyed app\'s /cdn refuses a request without a token and serves the trained image with one', async () => {
    const missing = await fetch(`${base}/cdn/dxf/${ORG}/${APP}/release.json`);
    expect(missing.status).toBe(403);
    expect(await missing.json()).toMatchObject({ status: 'error', error: 'forbidden' });
    const img = await fetch(`${base}/cdn/dxf/${ORG}/${APP}/0001/b0001-t001/image.json?token=${encodeURIComponent(token)}`);
    expect(img.status).toBe(200);
    expect((await fetch(`${base}/cdn/dxf/${ORG}/${APP}/0001/b0001-t001/image.json`)).status).toBe(403);
  });

  it('a player still on the untrained b0001-t000 updates to build 2 by patch (made from b0001-t001, a variant with the same files)', async () => {
    const push = await rockit(['push', path.join(dir, 'series', 'v2'), `${ORG}/${APP}`, '--name', '2.0']);
    expect(push.exitCode, push.stderr).toBe(0);
    await waitFor('build 2 published', 120_000, async () => ((await api('GET', `/be/v1/apps/${APP}`)).app?.iCurBuild === 2 ? true : undefined));
    const release = await waitFor('release of build 2 with its patch', 120_000, async () => {
      const r = await fetch(`${base}/cdn/dxf/${ORG}/${APP}/release.json`, { headers: { 'x-rockit-download-token': token } });
      const j = r.status === 200 ? ((await r.json()) as any) : undefined;
      return j?.buildId === 2 ? j : undefined;
    });
    expect(release.patches.map((p: any) => p.fromBuildId)).toEqual([1]);

    const up = await rockit(['update', installDir(), '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    expect(jsonLast(up.stdout)).toMatchObject({ outcome: 'patched', build: { buildId: 2, dxfName: release.dxfName } });
    const verify = await rockit(['verify', installDir(), '--json']);
    expect(verify.exitCode, verify.stderr + verify.stdout).toBe(0);
    expect(jsonLast((await rockit(['update', installDir(), '--json'])).stdout)).toMatchObject({ outcome: 'up-to-date' });
  }, 300_000);
});
