// Resumable uploads (api.md §7.2 "resumable in cluster mode via S3 multipart"; the protocol is
// decided in the README, "Resumable uploads"): over real HTTP, with the blob store in a folder
// (embedded) and in an S3-protocol server (cluster), on SQLite and PostgreSQL.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { buildImage } from '@rockit/engine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findImport } from '../db/repositories/import.repository.js';
import { bindRepositories } from '../db/repositories/index.js';
import { UploadService } from '../services/upload.service.js';
import { makeTar, pseudoRandomBytes } from '../pipeline/test-support/fixtures.js';
import { createOrg, loginAdmin, uniqueName } from '../test-support/factories.js';
import { startS3Server, type S3TestServer } from '../test-support/s3.js';
import { createTestServer, TEST_DIALECTS, type Dialect, type TestServer } from '../test-support/test-server.js';

const MIB = 1024 * 1024;
const LEASE_SECONDS = 30;
const STALL_SECONDS = 5;
const VARIANTS: Array<{ dialect: Dialect; store: 'fs' | 's3' }> = [
  { dialect: 'sqlite' as const, store: 'fs' as const },
  { dialect: 'pg' as const, store: 's3' as const },
].filter((v) => TEST_DIALECTS.includes(v.dialect));

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  json: any;
}

/** A PUT over a real socket. With `cut`, sends `cut.after` bytes, waits for `cut.until()` and destroys the connection. */
function put(url: string, body: Buffer, headers: Record<string, string> = {}, cut?: { after: number; until: () => Promise<boolean> }): Promise<Answer | 'cut'> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PUT', headers: { 'content-type': 'application/x-tar', 'content-length': String(body.length), ...headers } });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') }));
    });
    if (!cut) {
      req.on('error', reject);
      req.end(body);
      return;
    }
    req.on('error', () => resolve('cut'));
    req.write(body.subarray(0, cut.after));
    void (async () => {
      for (let i = 0; i < 500 && !(await cut.until()); i++) await sleep(20);
      req.destroy();
    })();
  });
}

async function get(url: string): Promise<Answer> {
  const r = await fetch(url);
  return { status: r.status, json: await r.json() };
}

/** A PUT that waits while another PUT of the same upload still holds it (the server notices a broken one in a moment). */
async function putWhenFree(url: string, body: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  for (let i = 0; ; i++) {
    const a = (await put(url, body, headers)) as Answer;
    if (!(a.status === 409 && /in progress/.test(a.json.message)) || i > 100) return a;
    await sleep(50);
  }
}

describe.each(VARIANTS)('resumable uploads ($dialect, $store blob store)', ({ dialect, store }) => {
  let t: TestServer;
  let s3: S3TestServer | undefined;
  let base = '';
  let h: Record<string, string> = {};
  // One file of incompressible bytes: 2.5 parts of 8 MiB.
  let tar: Buffer;

  beforeAll(async () => {
    tar = await makeTar([
      { name: 'game/', type: 'directory' },
      { name: 'game/big.pak', content: pseudoRandomBytes(20 * MIB, 3) },
      { name: 'game/readme.txt', content: 'resumable\n' },
    ]);
    const env: Record<string, string> = {
      ROCKIT_MAX_UPLOAD_BYTES: String(64 * MIB),
      ROCKIT_UPLOAD_EXPIRY_SECONDS: '600',
      ROCKIT_LEASE_SECONDS: String(LEASE_SECONDS),
      ROCKIT_UPLOAD_STALL_SECONDS: String(STALL_SECONDS),
      ROCKIT_TASK_MAX_ATTEMPTS: '1',
      ROCKIT_AUTH_SECONDS: String(24 * 3600),
    };
    if (store === 's3') {
      s3 = await startS3Server({ buckets: ['uploads'] });
      Object.assign(env, {
        ROCKIT_BLOB_URL: 's3://uploads/edge', ROCKIT_S3_ENDPOINT: s3.endpoint, ROCKIT_S3_REGION: s3.region,
        ROCKIT_S3_ACCESS_KEY_ID: s3.accessKeyId, ROCKIT_S3_SECRET_ACCESS_KEY: s3.secretAccessKey, ROCKIT_S3_FORCE_PATH_STYLE: 'true',
      });
    }
    t = await createTestServer({ dialect, env });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const org = await createOrg(t);
    h = (await loginAdmin(t, org)).headers;
  }, 120_000);

  afterAll(async () => {
    await t?.close();
    await s3?.stop();
  });

  async function newUpload(): Promise<{ task: string; url: string; appName: string }> {
    const appName = uniqueName('app');
    expect((await t.req('POST', '/be/v1/apps', { headers: h, body: { name: appName, label: appName } })).statusCode).toBe(201);
    const r = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName } });
    expect(r.statusCode, r.body).toBe(202);
    const u = new URL(r.json().upload.url);
    return { task: r.json().task.name, url: base + u.pathname + u.search, appName };
  }

  const stored = async (task: string): Promise<number> => Number((await findImport(t.server.db.db, task))?.upload_received_bytes ?? 0);

  async function settled(task: string): Promise<any[]> {
    for (let i = 0; i < 1500; i++) {
      const r = await t.req('GET', `/be/v1/tasks?limit=100`, { headers: h });
      const chain: any[] = [];
      let next: string | null = task;
      while (next) {
        const row: any = r.json().tasks.find((x: any) => x.name === next);
        if (!row) break;
        chain.push(row);
        next = row.result?.nextTask ?? null;
      }
      const last = chain[chain.length - 1];
      if (last && ['succeeded', 'failed', 'expired'].includes(last.status) && (last.type === 'deploy' || last.status !== 'succeeded')) return chain;
      await sleep(20);
    }
    throw new Error('pipeline did not settle');
  }

  /** The multipart upload is gone from the store: another part cannot be stored. */
  async function partsGone(task: string): Promise<void> {
    const imp = await findImport(t.server.db.db, task);
    expect(imp?.upload_id).toBeTruthy();
    // s3rver (the test's S3 server) implements no abort and takes parts for any upload id: the
    // S3 side of this is covered by the blob store's own contract tests against a real backend.
    if (store === 'fs') {
      await expect(t.server.blobStore.putPart(imp!.tar_key, imp!.upload_id!, { partNumber: 1, offset: 0, body: Buffer.alloc(1) })).rejects.toMatchObject({ code: 'not-found' });
      const tmp = path.join(t.dataDir, 'blobs');
      const leftovers = fs.readdirSync(tmp, { recursive: true }).map(String).filter((p) => p.includes(imp!.upload_id!));
      expect(leftovers).toEqual([]);
    }
  }

  it('a PUT cut off halfway keeps its whole parts; the rest, sent with Content-Range, completes the exact tar', async () => {
    const up = await newUpload();
    const cut = await put(up.url, tar, {}, { after: 12 * MIB, until: async () => (await stored(up.task)) >= 8 * MIB });
    expect(cut).toBe('cut');

    // The first 8 MiB part is kept; the 4 MiB after it (less than a part) is not.
    const st = await get(up.url);
    expect(st.status).toBe(200);
    expect(st.json.upload).toMatchObject({ taskName: up.task, state: 'waiting', receivedBytes: 8 * MIB, sizeBytes: tar.length });
    // The task shows how much of the tar arrived.
    expect((await t.req('GET', `/be/v1/tasks/${up.task}`, { headers: h })).json().task).toMatchObject({
      status: 'submitted', progress: expect.closeTo((8 * MIB) / tar.length, 2),
    });

    const from = st.json.upload.receivedBytes as number;
    const rest = await putWhenFree(up.url, tar.subarray(from), { 'content-range': `bytes ${from}-${tar.length - 1}/${tar.length}` });
    expect(rest.status, JSON.stringify(rest.json)).toBe(200);
    expect(rest.json.upload).toMatchObject({ state: 'received', receivedBytes: tar.length, sizeBytes: tar.length });

    const chain = await settled(up.task);
    expect(chain.map((x) => [x.type, x.status])).toEqual([['dltar', 'succeeded'], ['mkraw', 'succeeded'], ['deploy', 'succeeded']]);
    expect(chain[0].result).toMatchObject({ sizeBytes: tar.length, sha256: sha256(tar) });
    // Resumed: no PUT saw every byte, so dltar read the tar back to hash it (and mkraw built the image from it).
    expect((await findImport(t.server.db.db, up.task))?.upload_sha256).toBeNull();
    // Once complete, the URL takes nothing more (not even the probe form).
    const again = (await put(up.url, Buffer.alloc(0), { 'content-range': `bytes */${tar.length}` })) as Answer;
    expect(again).toMatchObject({ status: 409, json: { error: 'invalid-state' } });
  }, 120_000);

  it('pieces: each continues where the server is; a short non-final tail is dropped; bad ranges are refused', async () => {
    const up = await newUpload();
    const N = tar.length;
    const range = (a: number, b: number, total = N) => ({ 'content-range': `bytes ${a}-${b}/${total}` });

    // 6 MiB is less than a part but enough for a non-final one: kept.
    const p1 = (await put(up.url, tar.subarray(0, 6 * MIB), range(0, 6 * MIB - 1))) as Answer;
    expect(p1.status, JSON.stringify(p1.json)).toBe(200);
    expect(p1.json.upload).toMatchObject({ state: 'waiting', receivedBytes: 6 * MIB, sizeBytes: N });
    expect(p1.json.task.status).toBe('submitted');

    // Not where the server is → 409 with where it is.
    const wrong = (await put(up.url, tar.subarray(0, MIB), range(0, MIB - 1))) as Answer;
    expect(wrong.status).toBe(409);
    expect(wrong.json).toMatchObject({ error: 'invalid-state', receivedBytes: 6 * MIB });
    // Another total than announced, a malformed header, a length that disagrees with the range.
    const total = (await put(up.url, tar.subarray(6 * MIB, 7 * MIB), range(6 * MIB, 7 * MIB - 1, N + 1))) as Answer;
    expect(total).toMatchObject({ status: 400, json: { error: 'invalid-param', param: 'content-range' } });
    const malformed = (await put(up.url, Buffer.alloc(10), { 'content-range': 'bytes=0-9/10' })) as Answer;
    expect(malformed).toMatchObject({ status: 400, json: { error: 'invalid-param', param: 'content-range' } });
    const mismatch = (await put(up.url, Buffer.alloc(10), range(6 * MIB, 6 * MIB + 19))) as Answer;
    expect(mismatch).toMatchObject({ status: 400, json: { error: 'invalid-param', param: 'content-range' } });
    const beyond = (await put(up.url, Buffer.alloc(10), range(N, N + 9))) as Answer;
    expect(beyond).toMatchObject({ status: 400, json: { error: 'invalid-param', param: 'content-range' } });

    // 3 MiB that do not end the tar cannot be a part: dropped, the answer says so.
    const p2 = (await put(up.url, tar.subarray(6 * MIB, 9 * MIB), range(6 * MIB, 9 * MIB - 1))) as Answer;
    expect(p2.status).toBe(200);
    expect(p2.json.upload.receivedBytes).toBe(6 * MIB);

    // The probe form before the end changes nothing; the last piece completes.
    const probe = (await put(up.url, Buffer.alloc(0), { 'content-range': `bytes */${N}` })) as Answer;
    expect(probe.status).toBe(200);
    expect(probe.json.upload).toMatchObject({ state: 'waiting', receivedBytes: 6 * MIB });
    const last = (await put(up.url, tar.subarray(6 * MIB), range(6 * MIB, N - 1))) as Answer;
    expect(last.status, JSON.stringify(last.json)).toBe(200);
    expect(last.json.upload).toMatchObject({ state: 'received', receivedBytes: N });
    const chain = await settled(up.task);
    expect(chain[0]).toMatchObject({ type: 'dltar', status: 'succeeded', result: { sha256: sha256(tar) } });
  }, 120_000);

  it('one PUT writes at a time; a writer that went silent is taken over after its lease', async () => {
    const up = await newUpload();
    // A holds the upload: 1 MiB sent, the connection left open.
    const reqA = http.request(up.url, { method: 'PUT', headers: { 'content-length': String(tar.length) } });
    reqA.on('error', () => undefined);
    reqA.write(tar.subarray(0, MIB));
    for (let i = 0; i < 500 && !(await findImport(t.server.db.db, up.task))?.upload_writer; i++) await sleep(20);

    const busy = (await put(up.url, tar)) as Answer;
    expect(busy.status).toBe(409);
    expect(busy.json).toMatchObject({ error: 'invalid-state', receivedBytes: 0 });
    expect(busy.json.message).toMatch(/in progress/);

    // As if A's server had died: its lease lapses (the clock moves past it), B takes over and completes.
    t.clock.advance((LEASE_SECONDS + 1) * 1000);
    const b = (await put(up.url, tar)) as Answer;
    expect(b.status, JSON.stringify(b.json)).toBe(200);
    expect(b.json.upload.state).toBe('received');
    reqA.destroy();
    const chain = await settled(up.task);
    expect(chain[0]).toMatchObject({ status: 'succeeded', result: { sha256: sha256(tar) } });
  }, 120_000);

  it('a piece at the right offset takes over a writer that stalled (half-open connection); a whole PUT or a wrong offset does not', async () => {
    const up = await newUpload();
    const size = tar.length;
    // A sends one part and 6 MiB more (a tail long enough to be a part), then goes silent with the connection open.
    const reqA = http.request(up.url, { method: 'PUT', headers: { 'content-length': String(size) } });
    const aEnded = new Promise<void>((r) => reqA.on('close', () => r()));
    reqA.on('error', () => undefined);
    reqA.write(tar.subarray(0, 14 * MIB));
    for (let i = 0; i < 1500 && (await stored(up.task)) < 8 * MIB; i++) await sleep(20);
    expect(await stored(up.task)).toBe(8 * MIB);
    const range = { 'content-range': `bytes ${8 * MIB}-${size - 1}/${size}` };

    // A moved a moment ago: still its upload.
    const early = (await put(up.url, tar.subarray(8 * MIB), range)) as Answer;
    expect(early.status).toBe(409);
    expect(early.json.message).toMatch(/in progress/);

    // A has shown no progress for longer than the stall time (its lease, 30 s, still runs).
    t.clock.advance((STALL_SECONDS + 1) * 1000);
    const whole = (await put(up.url, tar)) as Answer;
    expect(whole.status).toBe(409);
    expect(whole.json.message).toMatch(/in progress/);
    const wrong = (await put(up.url, tar.subarray(4 * MIB), { 'content-range': `bytes ${4 * MIB}-${size - 1}/${size}` })) as Answer;
    expect(wrong.status).toBe(409);
    expect(wrong.json).toMatchObject({ error: 'invalid-state', receivedBytes: 8 * MIB });

    // (Should a last chunk of A reach the server after the clock moved, A moved then: wait a stall longer.)
    let b = (await put(up.url, tar.subarray(8 * MIB), range)) as Answer;
    for (let i = 0; i < 5 && b.status === 409 && /in progress/.test(b.json.message); i++) {
      t.clock.advance((STALL_SECONDS + 1) * 1000);
      b = (await put(up.url, tar.subarray(8 * MIB), range)) as Answer;
    }
    expect(b.status, JSON.stringify(b.json)).toBe(200);
    expect(b.json.upload).toMatchObject({ state: 'received', receivedBytes: size });
    // A's connection breaks now: it was taken over, so it stores nothing more (not its 6 MiB tail).
    reqA.destroy();
    await aEnded;
    const chain = await settled(up.task);
    expect(chain[0]).toMatchObject({ status: 'succeeded', result: { sha256: sha256(tar) } });
    const imp = await findImport(t.server.db.db, up.task);
    expect(JSON.parse(imp!.upload_parts!).length).toBe(3);
  }, 120_000);

  it('expiring a half-uploaded build (by PATCH or at the deadline) drops its stored parts', async () => {
    const a = await newUpload();
    await put(a.url, tar, {}, { after: 9 * MIB, until: async () => (await stored(a.task)) >= 8 * MIB });
    for (let i = 0; i < 100 && (await findImport(t.server.db.db, a.task))?.upload_writer; i++) await sleep(20);
    const ex = await t.req('PATCH', '/be/v1/tasks', { headers: h, body: { name: a.task, expire: true } });
    expect(ex.statusCode, ex.body).toBe(200);
    expect(ex.json().task.status).toBe('expired');
    expect((await get(a.url)).json.upload).toMatchObject({ state: 'expired', receivedBytes: 8 * MIB });
    const late = (await put(a.url, tar.subarray(8 * MIB), { 'content-range': `bytes ${8 * MIB}-${tar.length - 1}/${tar.length}` })) as Answer;
    expect(late).toMatchObject({ status: 409, json: { error: 'invalid-state' } });
    await partsGone(a.task);

    const b = await newUpload();
    await put(b.url, tar, {}, { after: 9 * MIB, until: async () => (await stored(b.task)) >= 8 * MIB });
    for (let i = 0; i < 100 && (await findImport(t.server.db.db, b.task))?.upload_writer; i++) await sleep(20);
    t.clock.advance(601_000);
    t.server.worker?.poke();
    const chain = await settled(b.task);
    expect(chain[0].status).toBe('expired');
    await partsGone(b.task);
    const gone = (await put(b.url, tar)) as Answer;
    expect(gone.status).toBeGreaterThanOrEqual(400);
  }, 120_000);

  it('deleting the org with prune drops the stored parts of its unfinished uploads', async () => {
    const org2 = await createOrg(t);
    const h2 = (await loginAdmin(t, org2)).headers;
    expect((await t.req('POST', '/be/v1/apps', { headers: h2, body: { name: 'half', label: 'half' } })).statusCode).toBe(201);
    const r = await t.req('POST', '/be/v1/builds', { headers: h2, body: { appName: 'half' } });
    const u = new URL(r.json().upload.url);
    const task = r.json().task.name as string;
    await put(base + u.pathname + u.search, tar, {}, { after: 9 * MIB, until: async () => (await stored(task)) >= 8 * MIB });
    for (let i = 0; i < 100 && (await findImport(t.server.db.db, task))?.upload_writer; i++) await sleep(20);
    const imp = await findImport(t.server.db.db, task);
    const del = await t.req('DELETE', `/adm/v1/orgs/${org2.name}?prune=true`, { headers: t.admin });
    expect(del.statusCode, del.body).toBe(200);
    if (store === 'fs') {
      const leftovers = fs.readdirSync(path.join(t.dataDir, 'blobs'), { recursive: true }).map(String).filter((p) => p.includes(imp!.upload_id!));
      expect(leftovers).toEqual([]);
    }
    expect(await t.server.blobStore.head(imp!.tar_key)).toBeNull();
  }, 120_000);

  it('one PUT that carries the whole tar is hashed on the way in; dltar checks the announced sha256 against it', async () => {
    const appName = uniqueName('app');
    expect((await t.req('POST', '/be/v1/apps', { headers: h, body: { name: appName, label: appName } })).statusCode).toBe(201);
    const submit = async (extra: Record<string, unknown>) => {
      const r = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName, ...extra } });
      expect(r.statusCode, r.body).toBe(202);
      const u = new URL(r.json().upload.url);
      return { task: r.json().task.name as string, url: base + u.pathname + u.search };
    };
    const wrong = await submit({ sha256: 'ab'.repeat(32) });
    expect(((await put(wrong.url, tar)) as Answer).status).toBe(200);
    expect(await findImport(t.server.db.db, wrong.task)).toMatchObject({ upload_sha256: sha256(tar), upload_compression: 'none' });
    const failed = await settled(wrong.task);
    expect(failed[0]).toMatchObject({ status: 'failed', error: { code: 'sha256-mismatch', sha256Actual: sha256(tar), sha256Expected: 'ab'.repeat(32) } });
    expect(await t.server.blobStore.head((await findImport(t.server.db.db, wrong.task))!.tar_key)).toBeNull();

    const takenBefore = t.server.earlyBuilds!.taken;
    const right = await submit({ sha256: sha256(tar), size: tar.length });
    expect(((await put(right.url, tar)) as Answer).status).toBe(200);
    const chain = await settled(right.task);
    expect(chain.map((x) => x.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(chain[0].result).toMatchObject({ sizeBytes: tar.length, sha256: sha256(tar), compression: 'none' });
    // The image was built while the bytes arrived (ROCKIT_EARLY_BUILD) and mkraw took it: the same image a build
    // of the tar makes. The refused upload's early image was not taken.
    expect(t.server.earlyBuilds!.taken).toBe(takenBefore + 1);
    const reference = await buildImage({ input: Readable.from([tar]), outDir: path.join(t.dataDir, `reference-${right.task}`) });
    expect((await findImport(t.server.db.db, right.task))?.manifest_file).toBe(reference.manifestName);
  }, 120_000);

  it.skipIf(store !== 'fs')('housekeeping aborts multipart uploads that no waiting upload uses, and only those', async () => {
    // An orphan: started under imports/ and never recorded (as if its server died right after starting it).
    const orphan = await t.server.blobStore.createMultipart('imports/nobody/t_orphan.tar');
    await t.server.blobStore.putPart('imports/nobody/t_orphan.tar', orphan, { partNumber: 1, offset: 0, body: Buffer.from('x') });
    // A live one: a half-uploaded build.
    const live = await newUpload();
    await put(live.url, tar, {}, { after: 9 * MIB, until: async () => (await stored(live.task)) >= 8 * MIB });
    const liveId = (await findImport(t.server.db.db, live.task))!.upload_id!;
    // Not ours: another prefix.
    const foreign = await t.server.blobStore.createMultipart('cdn/other.bin');

    const uploads = new UploadService(
      { db: t.server.db.db, repos: bindRepositories(t.server.db.capabilities), config: t.server.config, clock: t.clock, hooks: { pruneOrgFiles: async () => {} } },
      { blobStore: t.server.blobStore, maxUploadBytes: 64 * MIB, writerLeaseMs: 30_000, queue: t.server.queue },
    );
    expect(await uploads.sweepOrphans(Date.now() - 3600_000)).toBe(0); // nothing that old
    expect(await uploads.sweepOrphans(Date.now() + 1000)).toBe(1);
    const left: string[] = [];
    for await (const u of t.server.blobStore.listMultipart()) left.push(u.uploadId);
    expect(left).not.toContain(orphan);
    expect(left).toEqual(expect.arrayContaining([liveId, foreign]));
    await t.server.blobStore.abortMultipart('cdn/other.bin', foreign);
  }, 120_000);

  it('status needs the token: missing → 400, wrong → 404', async () => {
    const up = await newUpload();
    const u = new URL(up.url);
    expect(await get(base + u.pathname)).toMatchObject({ status: 400, json: { error: 'missing-param', param: 'token' } });
    expect(await get(`${base}${u.pathname}?token=rkup_nope`)).toMatchObject({ status: 404, json: { error: 'not-found' } });
    expect((await get(`${base}/be/v1/uploads/t_unknown?token=rkup_nope`)).status).toBe(404);
  });
});

describe.each(TEST_DIALECTS)('upload idle timeout (%s)', (dialect) => {
  let t: TestServer;
  let base = '';
  let h: Record<string, string> = {};

  beforeAll(async () => {
    t = await createTestServer({
      dialect,
      env: { ROCKIT_UPLOAD_IDLE_SECONDS: '1', ROCKIT_LEASE_SECONDS: '3600', ROCKIT_UPLOAD_EXPIRY_SECONDS: '600', ROCKIT_AUTH_SECONDS: String(24 * 3600) },
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    h = (await loginAdmin(t, await createOrg(t))).headers;
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  it('a PUT whose body brings no byte for ROCKIT_UPLOAD_IDLE_SECONDS is ended and lets go of the upload', async () => {
    const appName = uniqueName('app');
    expect((await t.req('POST', '/be/v1/apps', { headers: h, body: { name: appName, label: appName } })).statusCode).toBe(201);
    const r = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName } });
    const task: string = r.json().task.name;
    const u = new URL(r.json().upload.url);
    const url = base + u.pathname + u.search;
    const body = await makeTar([{ name: 'a.txt', content: 'idle\n' }]);

    // Headers and a few bytes, then silence on an open connection (its lease, an hour, would hold it).
    const stalled = http.request(url, { method: 'PUT', headers: { 'content-length': String(body.length) } });
    const ended = new Promise<string>((resolve) => {
      stalled.on('response', (res) => resolve(`answered ${res.statusCode}`));
      stalled.on('error', (e) => resolve(`closed (${(e as NodeJS.ErrnoException).code ?? e.message})`));
    });
    stalled.write(body.subarray(0, 100));
    for (let i = 0; i < 500 && !(await findImport(t.server.db.db, task))?.upload_writer; i++) await sleep(20);
    expect((await findImport(t.server.db.db, task))?.upload_writer).toBeTruthy();

    // The server ends it by itself: the connection closes and the upload is free again.
    expect(await ended).toMatch(/^closed/);
    for (let i = 0; i < 500 && (await findImport(t.server.db.db, task))?.upload_writer; i++) await sleep(20);
    expect((await findImport(t.server.db.db, task))?.upload_writer).toBeNull();
    const whole = (await put(url, body)) as Answer;
    expect(whole.status, JSON.stringify(whole.json)).toBe(200);
    expect(whole.json.upload.state).toBe('received');
  }, 60_000);
});
