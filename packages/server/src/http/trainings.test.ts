import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { encodeTrace, openImage, openImageSource, type TraceRecord } from '@rockit/engine';
import { findApp } from '../db/repositories/app.repository.js';
import { findOrgByName } from '../db/repositories/org.repository.js';
import { insertTrace } from '../db/repositories/trace.repository.js';
import { sortableId } from '../domain/ids.js';
import { makeTar, pseudoRandomBytes } from '../pipeline/test-support/fixtures.js';
import { appQueueKey } from '../queue/task-types.js';
import { enqueueTask } from '../queue/tasks.queue.js';
import { createOrg, createRole, createUser, loginAdmin, uniqueName, type OrgFixture, type Session } from '../test-support/factories.js';
import { startS3Server, type S3TestServer } from '../test-support/s3.js';
import { createTestServer, TEST_DIALECTS, type TestServer } from '../test-support/test-server.js';

const env = {
  ROCKIT_IMPORT_ALLOW_PRIVATE_URLS: 'true',
  ROCKIT_MAX_UPLOAD_BYTES: String(4 << 20),
  ROCKIT_LEASE_SECONDS: '3600',
  ROCKIT_TASK_MAX_ATTEMPTS: '1',
  ROCKIT_AUTH_SECONDS: String(24 * 3600),
};
const BUSY = ['submitted', 'running'];
const FILES = 8;
const FILE_BYTES = 24_000;

/** A game of FILES incompressible files (one chunk each): the image streams them in tar order. */
const gameTar = (): Promise<Buffer> =>
  makeTar([
    { name: 'game/', type: 'directory' },
    ...Array.from({ length: FILES }, (_, i) => ({ name: `game/f${i}.bin`, content: pseudoRandomBytes(FILE_BYTES, 50 + i) })),
  ]);

/** A session that reads the files last-to-first (the untrained stream order is the worst for it). */
function sessionRecords(jitter: number): TraceRecord[] {
  return Array.from({ length: FILES }, (_, k) => ({ tMs: k * 40 + jitter, path: `game/f${FILES - 1 - k}.bin`, offsetBytes: 0, lengthBytes: 4096 }));
}

describe.each(TEST_DIALECTS)('trainings and trace processing (%s)', (dialect) => {
  let t: TestServer;
  let org: OrgFixture;
  let other: OrgFixture;
  let admin: Session;
  let otherAdmin: Session;

  beforeAll(async () => {
    t = await createTestServer({ dialect, env });
    org = await createOrg(t);
    other = await createOrg(t);
    admin = await loginAdmin(t, org);
    otherAdmin = await loginAdmin(t, other);
  });
  afterAll(async () => {
    await t?.close();
  });

  const h = () => admin.headers;

  async function newApp(): Promise<string> {
    const name = uniqueName('app');
    const r = await t.req('POST', '/be/v1/apps', { headers: h(), body: { name, label: name } });
    expect(r.statusCode, r.body).toBe(201);
    return name;
  }

  async function tasksOf(appName: string): Promise<any[]> {
    const r = await t.req('GET', `/be/v1/tasks?appName=${appName}&limit=100&order[]=name`, { headers: h() });
    expect(r.statusCode, r.body).toBe(200);
    return (r.json().tasks as any[]).filter((x) => x.appName === appName && x.type !== 'webhook');
  }

  /** Polls until no task of the app is submitted or running. */
  async function settle(appName: string): Promise<any[]> {
    for (let i = 0; i < 3000; i++) {
      const tasks = await tasksOf(appName);
      // A cleanup waits for the grace period (its run_after): not busy.
      if (!tasks.some((x) => BUSY.includes(x.status) && x.type !== 'cleanup')) return tasks;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('tasks did not settle');
  }

  async function publishBuild(appName: string): Promise<void> {
    const r = await t.req('POST', '/be/v1/builds', { headers: h(), body: { appName } });
    expect(r.statusCode, r.body).toBe(202);
    const up = new URL(r.json().upload.url);
    const put = await t.app.inject({ method: 'PUT', url: up.pathname + up.search, headers: { 'content-type': 'application/x-tar' }, payload: await gameTar() });
    expect(put.statusCode, put.body).toBeLessThan(300);
    const tasks = await settle(appName);
    expect(tasks.filter((x) => x.type !== 'cleanup').map((x) => x.status).every((st) => st === 'succeeded')).toBe(true);
  }

  /** Stores `n` traces for the app as the intake does (a row and a blob). */
  async function addTraces(appName: string, n: number, records: (i: number) => TraceRecord[] = sessionRecords): Promise<void> {
    const db = t.server.db.db;
    const o = (await findOrgByName(db, org.name))!;
    const app = (await findApp(db, o.id, appName))!;
    for (let i = 0; i < n; i++) {
      const now = t.clock.now();
      const id = `tr_${sortableId(now)}`;
      const recs = records(i);
      const body = Buffer.from(encodeTrace({
        header: { orgName: org.name, appName, buildId: 1, dxfName: 'b0001-t000', sessionId: `s${i}`, firstSession: i % 2 === 0, startTimeUnixSeconds: 1_700_000_000 },
        records: recs,
      }));
      const blobKey = `traces/${o.id}/${app.id}/${id}.rktr`;
      await t.server.blobStore.put(blobKey, body);
      await insertTrace(db, {
        id, org_id: o.id, app_id: app.id, build_id: 1, dxf_name: 'b0001-t000', session_id: `s${i}`, first_session: i % 2 === 0 ? 1 : 0,
        records: recs.length, bytes_read: recs.reduce((a, r) => a + r.lengthBytes, 0), duration_ms: recs.at(-1)?.tMs ?? 0, coverage: 1,
        blob_key: blobKey, size_bytes: body.length, created_ms: now,
      });
    }
  }

  const release = async (appName: string): Promise<any> => {
    const r = await t.app.inject({ method: 'GET', url: `/cdn/dxf/${org.name}/${appName}/release.json` });
    expect(r.statusCode, r.body).toBe(200);
    return r.json();
  };

  it('GET shows the defaults; PATCH changes them with strict validation; list covers every app of the org only', async () => {
    const appName = await newApp();
    const g = await t.req('GET', `/be/v1/trainings/${appName}`, { headers: h() });
    expect(g.statusCode, g.body).toBe(200);
    expect(g.json()).toEqual({
      status: 'success',
      training: { appName, nTracesReliable: 12, auto: true, traces: 0, tracesSinceLastImage: 0, lastProcessed: null, quality: null },
    });
    const p = await t.req('PATCH', '/be/v1/trainings', { headers: h(), body: { appName, nTracesReliable: 3, auto: false } });
    expect(p.statusCode, p.body).toBe(200);
    expect(p.json().training).toMatchObject({ appName, nTracesReliable: 3, auto: false });
    expect((await t.req('GET', `/be/v1/trainings/${appName}`, { headers: h() })).json().training).toMatchObject({ nTracesReliable: 3, auto: false });

    for (const [body, param] of [
      [{ appName, nTracesReliable: 0 }, 'nTracesReliable'],
      [{ appName, nTracesReliable: 10_001 }, 'nTracesReliable'],
      [{ appName, nTracesReliable: '3' }, 'nTracesReliable'],
      [{ appName, nTracesReliable: 2.5 }, 'nTracesReliable'],
      [{ appName, auto: 'true' }, 'auto'],
      [{ appName, extra: 1 }, 'extra'],
      [{ appName: '../x' }, 'appName'],
    ] as const) {
      const r = await t.req('PATCH', '/be/v1/trainings', { headers: h(), body });
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json(), JSON.stringify(body)).toMatchObject({ status: 'error', error: 'invalid-param', param });
    }
    expect((await t.req('PATCH', '/be/v1/trainings', { headers: h(), body: { auto: true } })).json()).toMatchObject({ error: 'missing-param', param: 'appName' });
    expect((await t.req('PATCH', '/be/v1/trainings', { headers: h(), body: [1] })).json().error).toBe('invalid-json');
    expect((await t.req('PATCH', '/be/v1/trainings', { headers: h(), body: { appName: 'no_such_app' } })).statusCode).toBe(404);
    expect((await t.req('GET', '/be/v1/trainings/no_such_app', { headers: h() })).json().error).toBe('not-found');

    const list = await t.req('GET', `/be/v1/trainings?appName=${appName}&fields[]=appName,auto`, { headers: h() });
    expect(list.statusCode, list.body).toBe(200);
    expect(list.json()).toMatchObject({ status: 'success', total: 1, trainings: [{ appName, auto: false }] });
    expect(Object.keys(list.json().trainings[0]).sort()).toEqual(['appName', 'auto']);
    expect((await t.req('GET', '/be/v1/trainings?limit=1001', { headers: h() })).json()).toMatchObject({ error: 'invalid-param' });
    expect((await t.req('GET', '/be/v1/trainings?order[]=traces', { headers: h() })).json()).toMatchObject({ error: 'invalid-param', param: 'order[]' });
  });

  it('another org sees nothing of the app: 404 on GET, PATCH and trigger; its list does not name it', async () => {
    const appName = await newApp();
    const oh = otherAdmin.headers;
    expect((await t.req('GET', `/be/v1/trainings/${appName}`, { headers: oh })).json()).toMatchObject({ error: 'not-found' });
    expect((await t.req('PATCH', '/be/v1/trainings', { headers: oh, body: { appName, auto: false } })).json()).toMatchObject({ error: 'not-found' });
    expect((await t.req('POST', '/be/v1/trigger', { headers: oh, body: { type: 'traces', appName } })).json()).toMatchObject({ error: 'not-found' });
    const list = await t.req('GET', '/be/v1/trainings?limit=1000', { headers: oh });
    expect((list.json().trainings as any[]).map((x) => x.appName)).not.toContain(appName);
    // The owner's settings are untouched.
    expect((await t.req('GET', `/be/v1/trainings/${appName}`, { headers: h() })).json().training.auto).toBe(true);
  });

  it('permissions: trainings.read for GET, trainings.update for PATCH, tasks.execute for the trigger; no token, no access', async () => {
    const appName = await newApp();
    const reader = await createUser(t, org, h(), [await createRole(t, h(), { trainings: 2, tasks: 2 })]);
    const nobody = await createUser(t, org, h(), [await createRole(t, h(), { apps: 2 })]);
    expect((await t.req('GET', `/be/v1/trainings/${appName}`, { headers: reader.headers })).statusCode).toBe(200);
    expect((await t.req('GET', '/be/v1/trainings', { headers: reader.headers })).statusCode).toBe(200);
    expect((await t.req('PATCH', '/be/v1/trainings', { headers: reader.headers, body: { appName, auto: false } })).json())
      .toMatchObject({ error: 'forbidden', permission: 'trainings.update' });
    expect((await t.req('POST', '/be/v1/trigger', { headers: reader.headers, body: { type: 'traces', appName } })).json())
      .toMatchObject({ error: 'forbidden', permission: 'trigger.create' });
    expect((await t.req('GET', `/be/v1/trainings/${appName}`, { headers: nobody.headers })).json()).toMatchObject({ error: 'forbidden', permission: 'trainings.read' });
    expect((await t.req('GET', '/be/v1/trainings', { headers: nobody.headers })).json()).toMatchObject({ error: 'forbidden', permission: 'trainings.read' });
    expect((await t.req('GET', '/be/v1/trainings')).json().error).toBe('token-missing');
    expect((await t.req('PATCH', '/be/v1/trainings', { body: { appName } })).json().error).toBe('token-missing');
    // trainings allows read|update only (max 6): a role cannot be given more.
    expect((await t.req('POST', '/be/v1/roles', { headers: h(), body: { name: uniqueName('r'), permissions: { trainings: 7 } } })).json())
      .toMatchObject({ error: 'invalid-param' });
  });

  it('trigger refuses an app without a published build or without traces (409 invalid-state), and unknown fields', async () => {
    const appName = await newApp();
    const noBuild = await t.req('POST', '/be/v1/trigger', { headers: h(), body: { type: 'traces', appName } });
    expect(noBuild.statusCode).toBe(409);
    expect(noBuild.json()).toMatchObject({ status: 'error', error: 'invalid-state' });
    expect(noBuild.json().message).toMatch(/no published build/);
    await publishBuild(appName);
    const noTraces = await t.req('POST', '/be/v1/trigger', { headers: h(), body: { type: 'traces', appName } });
    expect(noTraces.statusCode).toBe(409);
    expect(noTraces.json().message).toMatch(/no traces/);
    expect((await t.req('POST', '/be/v1/trigger', { headers: h(), body: { type: 'traces' } })).json()).toMatchObject({ error: 'missing-param', param: 'appName' });
    expect((await t.req('POST', '/be/v1/trigger', { headers: h(), body: { type: 'traces', appName, taskName: 'x' } })).json()).toMatchObject({ error: 'invalid-param', param: 'taskName' });
    expect((await t.req('POST', '/be/v1/trigger', { headers: h(), body: { type: 'traces', appName: 'no_such_app' } })).json()).toMatchObject({ error: 'not-found' });
  });

  it('trigger trains, publishes b0001-t001 through the normal deploy only because the preload improves; again: no new image', async () => {
    const appName = await newApp();
    await publishBuild(appName);
    expect((await release(appName)).dxfName).toBe('b0001-t000');
    // Subscribers hear of trace tasks.
    const sub = await t.req('POST', '/be/v1/subscriptions', { headers: h(), body: { name: uniqueName('s'), type: 'webhook', url: 'http://127.0.0.1:9/hook', events: ['trace.submit', 'trace.begin', 'trace.end', 'trace.error'] } });
    expect(sub.statusCode, sub.body).toBe(201);
    await addTraces(appName, 4);

    const r = await t.req('POST', '/be/v1/trigger', { headers: h(), body: { type: 'traces', appName } });
    expect(r.statusCode, r.body).toBe(202);
    expect(r.json().task).toMatchObject({ type: 'trace', appName, buildId: 1 });
    const tasks = await settle(appName);
    const trace = tasks.find((x) => x.name === r.json().task.name);
    expect(trace.status, JSON.stringify(trace.error)).toBe('succeeded');
    expect(trace.result).toMatchObject({ buildId: 1, dxfName: 'b0001-t001', improved: true, traces: 4 });
    expect(trace.result.envelope.after['100Mbit']).toBeLessThan(trace.result.envelope.before['100Mbit']);
    // The untrained stream: every session needs the last file first, i.e. the whole build at once.
    expect(trace.result.envelope.before['1Gbit']).toBeGreaterThanOrEqual(FILES * FILE_BYTES);
    expect(trace.result.preloadBytes['100Mbit']).toBeLessThan(FILES * FILE_BYTES);
    const deploy = tasks.find((x) => x.name === trace.result.deployTask);
    expect(deploy).toMatchObject({ type: 'deploy', status: 'succeeded' });

    const rel = await release(appName);
    expect(rel).toMatchObject({ buildId: 1, dxfName: 'b0001-t001' });
    expect(rel.image.path).toBe(`dxf/${org.name}/${appName}/0001/b0001-t001/`);
    const img = await t.app.inject({ method: 'GET', url: `/cdn/${rel.image.path}image.json` });
    expect(img.statusCode).toBe(200);
    // The replaced variant stays for the grace period (a cleanup task waits for it).
    expect((await t.app.inject({ method: 'GET', url: `/cdn/dxf/${org.name}/${appName}/0001/b0001-t000/image.json` })).statusCode).toBe(200);
    expect(tasks.filter((x) => x.type === 'cleanup' && x.status === 'submitted')).toHaveLength(1);
    const appDto = (await t.req('GET', `/be/v1/apps/${appName}`, { headers: h() })).json().app;
    expect(appDto).toMatchObject({ iCurBuild: 1, dxfName: 'b0001-t001' });

    const training = (await t.req('GET', `/be/v1/trainings/${appName}`, { headers: h() })).json().training;
    expect(training).toMatchObject({ traces: 4, tracesSinceLastImage: 0 });
    expect(training.lastProcessed).toBeTypeOf('number');
    expect(training.quality.coverage).toBeCloseTo(1, 5);
    expect(training.quality.preloadBytes).toEqual(trace.result.preloadBytes);
    const listed = (await t.req('GET', `/be/v1/trainings?appName=${appName}`, { headers: h() })).json().trainings;
    expect(listed).toEqual([training]);

    // The same traces on the trained image: nothing to improve, no new variant, no deploy.
    const again = await t.req('POST', '/be/v1/trigger', { headers: h(), body: { type: 'traces', appName } });
    expect(again.statusCode, again.body).toBe(202);
    const after = await settle(appName);
    const second = after.find((x) => x.name === again.json().task.name);
    expect(second.status, JSON.stringify(second.error)).toBe('succeeded');
    expect(second.result).toMatchObject({ dxfName: 'b0001-t001', improved: false });
    expect(second.result.deployTask).toBeUndefined();
    expect((await release(appName)).dxfName).toBe('b0001-t001');

    // Webhook deliveries were queued for the trace events (submit, begin, end), per task.
    const hooks = await t.server.db.db.selectFrom('tasks').select(['payload']).where('type', '=', 'webhook').execute();
    const events = hooks.map((x) => JSON.parse(x.payload).event).filter((e: any) => e.appName === appName && e.type === 'trace');
    for (const name of [trace.name, second.name]) {
      expect(events.filter((e: any) => e.taskName === name).map((e: any) => e.event).sort()).toEqual(['begin', 'end', 'submit']);
    }
    expect(events.find((e: any) => e.taskName === trace.name && e.event === 'end').dxfName).toBe('b0001-t001');
  }, 60_000);

  it('one trace processing at a time per app: concurrent triggers get 409 naming the pending task', async () => {
    const appName = await newApp();
    await publishBuild(appName);
    await addTraces(appName, 2);
    const db = t.server.db.db;
    const o = (await findOrgByName(db, org.name))!;
    const app = (await findApp(db, o.id, appName))!;
    // Hold the app's queue so the trace task stays submitted while the others are refused.
    const blocker = await enqueueTask(db, t.clock.now(), { type: 'hello', payload: {}, orgId: o.id, appName, queueKey: appQueueKey(app.id), maxAttempts: 1, runAfterMs: t.clock.now() + 3600_000 });
    const answers = await Promise.all(Array.from({ length: 4 }, () => t.req('POST', '/be/v1/trigger', { headers: h(), body: { type: 'traces', appName } })));
    const accepted = answers.filter((a) => a.statusCode === 202);
    expect(accepted).toHaveLength(1);
    const pending = accepted[0].json().task.name;
    for (const a of answers.filter((x) => x.statusCode !== 202)) {
      expect(a.statusCode).toBe(409);
      expect(a.json()).toMatchObject({ error: 'invalid-state', task: pending });
    }
    await db.updateTable('tasks').set({ status: 'canceled' }).where('name', '=', blocker.name).execute();
    const tasks = await settle(appName);
    expect(tasks.find((x) => x.name === pending).status).toBe('succeeded');
  }, 60_000);

  it('auto: reaching nTracesReliable new traces starts processing (here by lowering the threshold)', async () => {
    const appName = await newApp();
    await publishBuild(appName);
    await addTraces(appName, 3);
    // 3 < 12: nothing yet.
    expect((await tasksOf(appName)).some((x) => x.type === 'trace')).toBe(false);
    expect((await t.req('GET', `/be/v1/trainings/${appName}`, { headers: h() })).json().training).toMatchObject({ traces: 3, tracesSinceLastImage: 3 });
    const p = await t.req('PATCH', '/be/v1/trainings', { headers: h(), body: { appName, nTracesReliable: 3 } });
    expect(p.statusCode, p.body).toBe(200);
    const tasks = await settle(appName);
    const trace = tasks.find((x) => x.type === 'trace');
    expect(trace?.status, JSON.stringify(trace?.error)).toBe('succeeded');
    expect(trace.result.dxfName).toBe('b0001-t001');
    expect((await release(appName)).dxfName).toBe('b0001-t001');
    // Processed: the count starts again; auto off means a full count starts nothing.
    expect((await t.req('PATCH', '/be/v1/trainings', { headers: h(), body: { appName, auto: false } })).json().training.tracesSinceLastImage).toBe(0);
    await addTraces(appName, 3);
    await t.req('PATCH', '/be/v1/trainings', { headers: h(), body: { appName, nTracesReliable: 2 } });
    expect((await tasksOf(appName)).filter((x) => x.type === 'trace')).toHaveLength(1);
  }, 60_000);

  it('traces that do not fall on the build (e.g. of a deleted build): the task ends with a clear error, nothing is published', async () => {
    const appName = await newApp();
    await publishBuild(appName);
    await addTraces(appName, 2, () => [{ tMs: 0, path: 'gone/old.pak', offsetBytes: 0, lengthBytes: 100 }]);
    const sub = await t.req('POST', '/be/v1/subscriptions', { headers: h(), body: { name: uniqueName('s'), type: 'webhook', url: 'http://127.0.0.1:9/hook', events: ['trace.error'] } });
    expect(sub.statusCode, sub.body).toBe(201);
    const r = await t.req('POST', '/be/v1/trigger', { headers: h(), body: { type: 'traces', appName } });
    expect(r.statusCode, r.body).toBe(202);
    const tasks = await settle(appName);
    const trace = tasks.find((x) => x.name === r.json().task.name);
    expect(trace.status).toBe('failed');
    expect(trace.error.message).toMatch(/none of the 2 traces .* can be used for build 1 \(2 read nothing/);
    expect((await release(appName)).dxfName).toBe('b0001-t000');
    expect((await t.req('GET', `/be/v1/trainings/${appName}`, { headers: h() })).json().training.lastProcessed).toBeNull();
    // Subscribers hear of the failure, with the task's error.
    const hooks = await t.server.db.db.selectFrom('tasks').select(['payload']).where('type', '=', 'webhook').execute();
    const failed = hooks.map((x) => JSON.parse(x.payload).event).find((e: any) => e.taskName === trace.name && e.event === 'error');
    expect(failed).toMatchObject({ type: 'trace', event: 'error', appName, error: { message: expect.stringMatching(/none of the 2 traces/) } });
    // A failed task does not block the next trigger.
    expect((await t.req('POST', '/be/v1/trigger', { headers: h(), body: { type: 'traces', appName } })).statusCode).toBe(202);
    await settle(appName);
  }, 60_000);

  it('an app deleted while its trace task waits: the task ends with a clear error; the training goes with the app', async () => {
    const appName = await newApp();
    await publishBuild(appName);
    await addTraces(appName, 2);
    const db = t.server.db.db;
    const o = (await findOrgByName(db, org.name))!;
    const app = (await findApp(db, o.id, appName))!;
    const blocker = await enqueueTask(db, t.clock.now(), { type: 'hello', payload: {}, orgId: o.id, appName, queueKey: appQueueKey(app.id), maxAttempts: 1, runAfterMs: t.clock.now() + 3600_000 });
    const r = await t.req('POST', '/be/v1/trigger', { headers: h(), body: { type: 'traces', appName } });
    expect(r.statusCode, r.body).toBe(202);
    const del = await t.req('DELETE', `/be/v1/apps/${appName}`, { headers: h() });
    expect(del.statusCode, del.body).toBe(200);
    expect(await db.selectFrom('trainings').selectAll().where('app_id', '=', app.id).execute()).toEqual([]);
    await db.updateTable('tasks').set({ status: 'canceled' }).where('name', '=', blocker.name).execute();
    let task: any;
    for (let i = 0; i < 3000; i++) {
      task = (await t.req('GET', `/be/v1/tasks/${r.json().task.name}`, { headers: h() })).json().task;
      if (!BUSY.includes(task.status)) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(task).toMatchObject({ status: 'failed', error: { message: 'the app was deleted' } });
  }, 60_000);

  it('a new build\'s first image is already ordered by the app\'s traces (mapped by path and offset)', async () => {
    const appName = await newApp();
    await t.req('PATCH', '/be/v1/trainings', { headers: h(), body: { appName, auto: false } });
    await publishBuild(appName);
    await addTraces(appName, 3);
    await publishBuild(appName);
    const tasks = await tasksOf(appName);
    const mkraw = tasks.filter((x) => x.type === 'mkraw');
    expect(mkraw.map((x) => x.result.orderedByTraces)).toEqual([0, 3]);
    const rel = await release(appName);
    expect(rel).toMatchObject({ buildId: 2, dxfName: 'b0002-t000' });
    expect(rel.patches.map((p: any) => p.fromBuildId)).toEqual([1]);
    const dir = path.join(t.dataDir, 'blobs', 'cdn', ...rel.image.path.split('/'));
    const img = await openImage(openImageSource(dir));
    await img.source.close();
    const m = img.manifest;
    expect(m.profile?.points.length).toBeGreaterThan(0);
    // The sessions read f7 first: its chunk is streamed first now (tar order would put f0 first).
    const first = m.files.find((f) => f.path === 'game/f7.bin')!;
    expect(first.chunks[0]).toBe(0);
  }, 60_000);

  it('a trace task taken over after its worker died finishes without a second image', async () => {
    const appName = await newApp();
    await publishBuild(appName);
    await addTraces(appName, 3);
    // An earlier attempt that died mid-upload left part of the new variant: rewritten exactly, never published half.
    await t.server.blobStore.put(`cdn/dxf/${org.name}/${appName}/0001/b0001-t001/stray.pack`, Buffer.from('partial'));
    const r = await t.req('POST', '/be/v1/trigger', { headers: h(), body: { type: 'traces', appName } });
    const name = r.json().task.name as string;
    await settle(appName);
    // As if the worker died after the commit, before recording success: the lease lapses, another worker runs it again.
    const db = t.server.db.db;
    await db.updateTable('tasks').set({ status: 'running', lease_owner: 'dead-worker', lease_expires_ms: t.clock.now() - 1, result: null, max_attempts: 2 })
      .where('name', '=', name).execute();
    // Workers look for lapsed leases every half lease.
    t.clock.advance(2 * 3600_000);
    t.server.worker!.poke();
    let task: any;
    for (let i = 0; i < 3000; i++) {
      task = (await t.req('GET', `/be/v1/tasks/${name}`, { headers: h() })).json().task;
      if (task.status === 'succeeded' && task.result) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(task).toMatchObject({ status: 'succeeded', result: { dxfName: 'b0001-t001', improved: true, alreadyDone: true } });
    const tasks = await settle(appName);
    expect(tasks.filter((x) => x.type === 'deploy')).toHaveLength(2); // the import's and the training's, no third
    expect((await release(appName)).dxfName).toBe('b0001-t001');
    expect((await t.app.inject({ method: 'GET', url: `/cdn/dxf/${org.name}/${appName}/0001/b0001-t001/stray.pack` })).statusCode).toBe(404);
  }, 60_000);
});

/**
 * Cluster mode (PostgreSQL + one S3 blob store): an API node without a worker takes the build, the
 * traces and the trigger; a second node's worker runs the pipeline and the trace task with its own
 * work folder; the trained variant reaches the S3 depot and the API node's /cdn.
 */
describe.runIf(TEST_DIALECTS.includes('pg'))('trace processing in cluster mode (two nodes, PostgreSQL, S3)', () => {
  let s3: S3TestServer;
  let api: TestServer;
  let worker: TestServer;

  beforeAll(async () => {
    s3 = await startS3Server({ buckets: ['edge'] });
    const common = {
      ...env,
      ROCKIT_DATABASE_SCHEMA: `t_${randomBytes(6).toString('hex')}`,
      ROCKIT_BLOB_URL: 's3://edge/data', ROCKIT_S3_ENDPOINT: s3.endpoint, ROCKIT_S3_REGION: s3.region,
      ROCKIT_S3_ACCESS_KEY_ID: s3.accessKeyId, ROCKIT_S3_SECRET_ACCESS_KEY: s3.secretAccessKey, ROCKIT_S3_FORCE_PATH_STYLE: 'true',
    };
    api = await createTestServer({ dialect: 'pg', env: { ...common, ROCKIT_NO_WORKER: 'true' } });
    worker = await createTestServer({ dialect: 'pg', sharesDatabase: true, env: common });
  }, 120_000);
  afterAll(async () => {
    await worker?.close();
    await api?.close();
    await s3?.stop();
  });

  it('the API node submits, the other node trains; release.json on the S3 depot names b0001-t001', async () => {
    expect(api.server.worker).toBeUndefined();
    const org = await createOrg(api);
    const hh = (await loginAdmin(api, org)).headers;
    const appName = uniqueName('app');
    expect((await api.req('POST', '/be/v1/apps', { headers: hh, body: { name: appName, label: appName } })).statusCode).toBe(201);
    const b = await api.req('POST', '/be/v1/builds', { headers: hh, body: { appName } });
    const up = new URL(b.json().upload.url);
    const put = await api.app.inject({ method: 'PUT', url: up.pathname + up.search, headers: { 'content-type': 'application/x-tar' }, payload: await gameTar() });
    expect(put.statusCode, put.body).toBeLessThan(300);
    const appOf = async () => (await api.req('GET', `/be/v1/apps/${appName}`, { headers: hh })).json().app;
    for (let i = 0; i < 3000 && (await appOf()).iCurBuild !== 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await appOf()).toMatchObject({ iCurBuild: 1, dxfName: 'b0001-t000' });

    const db = api.server.db.db;
    const o = (await findOrgByName(db, org.name))!;
    const app = (await findApp(db, o.id, appName))!;
    for (let i = 0; i < 3; i++) {
      const id = `tr_${sortableId(api.clock.now())}`;
      const recs = sessionRecords(i);
      const body = Buffer.from(encodeTrace({
        header: { orgName: org.name, appName, buildId: 1, dxfName: 'b0001-t000', sessionId: `s${i}`, firstSession: true, startTimeUnixSeconds: 1_700_000_000 },
        records: recs,
      }));
      const blobKey = `traces/${o.id}/${app.id}/${id}.rktr`;
      await api.server.blobStore.put(blobKey, body);
      await insertTrace(db, {
        id, org_id: o.id, app_id: app.id, build_id: 1, dxf_name: 'b0001-t000', session_id: `s${i}`, first_session: 1, records: recs.length,
        bytes_read: recs.reduce((a, r) => a + r.lengthBytes, 0), duration_ms: recs.at(-1)!.tMs, coverage: 1, blob_key: blobKey, size_bytes: body.length,
        created_ms: api.clock.now(),
      });
    }
    const r = await api.req('POST', '/be/v1/trigger', { headers: hh, body: { type: 'traces', appName } });
    expect(r.statusCode, r.body).toBe(202);
    let task: any;
    for (let i = 0; i < 3000; i++) {
      task = (await api.req('GET', `/be/v1/tasks/${r.json().task.name}`, { headers: hh })).json().task;
      if (!BUSY.includes(task.status)) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    expect(task.result).toMatchObject({ dxfName: 'b0001-t001', improved: true });
    for (let i = 0; i < 3000 && (await appOf()).dxfName !== 'b0001-t001'; i++) await new Promise((res) => setTimeout(res, 20));
    const rel = await api.app.inject({ method: 'GET', url: `/cdn/dxf/${org.name}/${appName}/release.json` });
    expect(rel.statusCode).toBe(200);
    expect(rel.json()).toMatchObject({ buildId: 1, dxfName: 'b0001-t001' });
    expect((await api.server.blobStore.head(`cdn/${rel.json().image.path}image.json`))).not.toBeNull();
  }, 120_000);
});
