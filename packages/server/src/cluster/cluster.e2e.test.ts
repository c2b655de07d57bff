/**
 * Cluster mode end to end, through the real binaries: two API nodes (`serve --no-worker`) and two
 * worker processes (`worker`) on one PostgreSQL schema and one S3 blob store (s3rver). The upload
 * of the build goes to API node A, which is SIGKILLed halfway through it; the client asks node B
 * how much arrived and sends the rest there (api.md §7.2: resumable in cluster mode via S3
 * multipart). Then a worker is SIGKILLed while it holds a task of the import; the other worker
 * must take the task over once the lease lapses and finish the pipeline, publishing the release
 * exactly once.
 *
 * Which worker holds the task: lease owners are random ids that no log line names, so both workers
 * start, then B is suspended (SIGSTOP) before the import exists; the mkraw task is therefore leased
 * by A, which is SIGKILLed the moment mkraw is seen running, and B is resumed (SIGCONT).
 *
 * Needs `npx tsc -b` first (runs packages/server/dist/bin.js). Skipped unless 'pg' is in
 * ROCKIT_TEST_DIALECTS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { extractImage, verifyImage } from '@rockit/engine';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTar, pseudoRandomBytes, type TarEntrySpec } from '../pipeline/test-support/fixtures.js';
import { startS3Server, type S3TestServer } from '../test-support/s3.js';
import { dropSchema, TEST_DIALECTS, TEST_PG_URL } from '../test-support/test-server.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/bin.js');
const ADMIN_TOKEN = 'cluster-admin-token-0123456789abcdef';
const PIPELINE = ['dltar', 'mkraw', 'deploy'];
const LEASE_SECONDS = 5;

interface Proc {
  name: string;
  child: ChildProcess;
  /** Every stdout/stderr line so far (pino JSON lines for the server). */
  lines: string[];
  exited: Promise<number | null>;
}

function startProc(name: string, args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = '';
    stream.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { name, child, lines, exited };
}

/** Polls `fn` every 50 ms until it returns a value other than undefined; throws after `ms`. */
async function waitFor<T>(what: string, ms: number, fn: () => Promise<T | undefined> | T | undefined, procs: Proc[] = []): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      const logs = procs.map((p) => `--- ${p.name}\n${p.lines.slice(-30).join('\n')}`).join('\n');
      throw new Error(`timed out waiting for ${what}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const logged = (p: Proc, msg: string): any => {
  for (const l of p.lines) {
    try {
      const j = JSON.parse(l);
      if (j.msg === msg) return j;
    } catch {
      // not a JSON line
    }
  }
  return undefined;
};

async function readTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(dir: string, rel: string): Promise<void> {
    for (const e of await fs.promises.readdir(dir, { withFileTypes: true })) {
      const abs = path.join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(abs, r);
      else out[r] = (await fs.promises.readFile(abs)).toString('base64');
    }
  }
  await walk(root, '');
  return out;
}

const runPg = TEST_DIALECTS.includes('pg');

describe.skipIf(!runPg)('cluster mode: API node + two workers on PostgreSQL and S3', () => {
  const schema = `c_${randomBytes(6).toString('hex')}`;
  let tmp = '';
  const procs: Proc[] = [];
  let s3: S3TestServer;
  let db: pg.Client;
  let env: Record<string, string>;
  let base = '';
  let baseB = '';
  let apiA: Proc;

  // Incompressible game files (a few MB) so that mkraw takes long enough to be caught running.
  const files: TarEntrySpec[] = [
    { name: 'game/', type: 'directory' },
    { name: 'game/a.bin', content: pseudoRandomBytes(6 * 1024 * 1024, 11) },
    { name: 'game/b.bin', content: pseudoRandomBytes(6 * 1024 * 1024, 12) },
    { name: 'game/sub/c.bin', content: pseudoRandomBytes(4 * 1024 * 1024, 13) },
    { name: 'game/readme.txt', content: 'cluster build\n' },
  ];

  beforeAll(async () => {
    if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npx tsc -b\` first`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-cluster-'));
    s3 = await startS3Server({ buckets: ['rockit'] });
    db = new pg.Client({ connectionString: TEST_PG_URL });
    await db.connect();
    env = {
      ROCKIT_DATABASE_URL: TEST_PG_URL,
      ROCKIT_DATABASE_SCHEMA: schema,
      ROCKIT_BLOB_URL: 's3://rockit/edge',
      ROCKIT_S3_ENDPOINT: s3.endpoint,
      ROCKIT_S3_REGION: s3.region,
      ROCKIT_S3_ACCESS_KEY_ID: s3.accessKeyId,
      ROCKIT_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      ROCKIT_S3_FORCE_PATH_STYLE: 'true',
      ROCKIT_INSTALLATION_KEY: randomBytes(32).toString('hex'),
      ROCKIT_ADMIN_TOKEN: ADMIN_TOKEN,
      ROCKIT_SCRYPT_COST: '1024',
      ROCKIT_LEASE_SECONDS: String(LEASE_SECONDS),
      ROCKIT_TASK_MAX_ATTEMPTS: '3',
      ROCKIT_WORKER_POLL_MS: '100',
      ROCKIT_WORKER_CONCURRENCY: '1',
      ROCKIT_MAX_UPLOAD_BYTES: String(64 * 1024 * 1024),
      ROCKIT_LOG_LEVEL: 'info',
      ROCKIT_HOST: '127.0.0.1',
      ROCKIT_PORT: '0',
    };
    apiA = startProc('apiA', ['serve', '--no-worker', '--data', path.join(tmp, 'apiA')], env);
    const apiB = startProc('apiB', ['serve', '--no-worker', '--data', path.join(tmp, 'apiB')], env);
    procs.push(apiA, apiB);
    const listeningA = await waitFor('API node A to listen', 30_000, () => logged(apiA, 'rockit-edge listening'), procs);
    const listeningB = await waitFor('API node B to listen', 30_000, () => logged(apiB, 'rockit-edge listening'), procs);
    base = String(listeningA.address).replace('0.0.0.0', '127.0.0.1');
    baseB = String(listeningB.address).replace('0.0.0.0', '127.0.0.1');
  }, 60_000);

  afterAll(async () => {
    for (const p of procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }
    await db?.end().catch(() => {});
    await dropSchema(schema).catch(() => {});
    await s3?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }, 30_000);

  async function call(method: string, url: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; json: any; text: string }> {
    const r = await fetch(base + url, {
      method,
      headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: r.status, json, text };
  }

  const taskRows = async (): Promise<any[]> =>
    (await db.query(`SELECT name, type, status, attempts, lease_owner, error FROM "${schema}".tasks ORDER BY created_ms, name`)).rows;

  it('an upload resumes on another API node after its node is SIGKILLed; a SIGKILLed worker loses its task to the other worker; one complete release', async () => {
    // org, login, app — all through the API node.
    const org = await call('POST', '/adm/v1/orgs', { 'x-rockit-admin-token': ADMIN_TOKEN }, { name: 'cluster_org' });
    expect(org.status, org.text).toBe(201);
    const l = await call('POST', '/be/v1/login', {}, { orgName: 'cluster_org', username: org.json.admin.username, password: org.json.admin.password });
    expect(l.status, l.text).toBe(200);
    const a = await call('POST', '/be/v1/auth', { 'x-rockit-besession-token': l.json.session.token });
    expect(a.status, a.text).toBe(200);
    const h = { 'x-rockit-beauth-token': a.json.auth.token as string };
    const app = await call('POST', '/be/v1/apps', h, { name: 'game', label: 'Cluster Game' });
    expect(app.status, app.text).toBe(201);

    // Both workers start; B is then suspended (SIGSTOP) before any task exists, so the task that
    // gets leased next is A's. B resumes (SIGCONT) right after A is SIGKILLed.
    const workerA = startProc('workerA', ['worker', '--data', path.join(tmp, 'wa')], env);
    const workerB = startProc('workerB', ['worker', '--data', path.join(tmp, 'wb')], env);
    procs.push(workerA, workerB);
    await waitFor('worker A to run', 30_000, () => logged(workerA, 'rockit-edge worker running'), procs);
    await waitFor('worker B to run', 30_000, () => logged(workerB, 'rockit-edge worker running'), procs);
    expect(await taskRows()).toEqual([]);
    workerB.child.kill('SIGSTOP');

    const tar = await makeTar(files);
    const b = await call('POST', '/be/v1/builds', h, { appName: 'game', buildName: '1.0.0' });
    expect(b.status, b.text).toBe(202);
    const uploadPath = String(b.json.upload.url).replace(/^https?:\/\/[^/]+/, '');

    // The upload goes to node A; once A has stored the first 8 MiB part, A is SIGKILLed mid-PUT.
    const MIB = 1024 * 1024;
    const toA = http.request(base + uploadPath, { method: 'PUT', headers: { 'content-type': 'application/x-tar', 'content-length': String(tar.length) } });
    toA.on('error', () => undefined);
    toA.write(tar.subarray(0, 12 * MIB));
    await waitFor('node A to store the first part', 30_000, async () => {
      const r = await db.query(`SELECT upload_received_bytes FROM "${schema}".imports WHERE task_name = $1`, [b.json.task.name]);
      return Number(r.rows[0]?.upload_received_bytes) >= 8 * MIB ? true : undefined;
    }, procs);
    apiA.child.kill('SIGKILL');
    expect(await apiA.exited).toBeNull();
    toA.destroy();
    base = baseB;

    // Node B knows how much arrived and takes the rest once A's hold on the upload lapses.
    const status = await call('GET', uploadPath, {});
    expect(status.status, status.text).toBe(200);
    expect(status.json.upload).toMatchObject({ state: 'waiting', receivedBytes: 8 * MIB, sizeBytes: tar.length });
    const from = status.json.upload.receivedBytes as number;
    const rest = await waitFor('node B to take the rest of the upload', 30_000, async () => {
      const r = await fetch(base + uploadPath, {
        method: 'PUT',
        headers: { 'content-type': 'application/x-tar', 'content-range': `bytes ${from}-${tar.length - 1}/${tar.length}` },
        body: tar.subarray(from),
      });
      const json = (await r.json()) as any;
      if (r.status === 409 && /in progress/.test(json.message)) return undefined;
      return { status: r.status, json };
    }, procs);
    expect(rest.status, JSON.stringify(rest.json)).toBe(200);
    expect(rest.json.upload).toMatchObject({ state: 'received', receivedBytes: tar.length });

    // A claims mkraw (the slow step); kill A the moment it is seen running.
    const victim = await waitFor('worker A to run mkraw', 60_000, async () => {
      const rows = await taskRows();
      const v = rows.find((r) => r.type === 'mkraw' && r.status === 'running' && r.lease_owner !== null);
      if (v) workerA.child.kill('SIGKILL');
      else if (rows.some((r) => r.type === 'deploy')) throw new Error('mkraw ended before it was seen running (make the build larger)');
      return v;
    }, procs);
    expect(await workerA.exited).toBeNull();
    const still = (await taskRows()).find((r) => r.name === victim.name);
    expect(still, 'A died holding mkraw').toMatchObject({ status: 'running', lease_owner: victim.lease_owner, attempts: 1 });
    workerB.child.kill('SIGCONT');

    // B takes the task over after the lease lapses and finishes the pipeline.
    const done = await waitFor('the pipeline to finish', 90_000, async () => {
      const rows = (await taskRows()).filter((r) => PIPELINE.includes(r.type));
      const types = rows.map((r) => r.type);
      if (PIPELINE.every((t) => types.includes(t)) && rows.every((r) => !['submitted', 'running'].includes(r.status))) return rows;
      if (rows.some((r) => r.status === 'failed')) return rows;
      return undefined;
    }, procs);
    expect(done.map((r) => [r.type, r.status])).toEqual([['dltar', 'succeeded'], ['mkraw', 'succeeded'], ['deploy', 'succeeded']]);
    // dltar read back exactly the tar that was sent, in two PUTs to two nodes.
    const dl = await call('GET', `/be/v1/tasks/${b.json.task.name}`, h);
    expect(dl.json.task.result).toMatchObject({ sizeBytes: tar.length, sha256: createHash('sha256').update(tar).digest('hex') });

    // The takeover shows in the task's attempts (through the API too).
    const t = await call('GET', `/be/v1/tasks/${victim.name}`, h);
    expect(t.status, t.text).toBe(200);
    expect(t.json.task.status).toBe('succeeded');
    expect(t.json.task.attempts).toBe(2);
    expect(logged(workerB, 'reclaimed tasks with lapsed leases')).toBeDefined();
    // A never finished the victim task: the only "task succeeded" for it is B's.
    expect(workerA.lines.some((x) => x.includes(victim.name) && x.includes('task succeeded'))).toBe(false);
    expect(workerB.lines.some((x) => x.includes(victim.name) && x.includes('task succeeded'))).toBe(true);

    // Published exactly once: one build row, one of each pipeline task, the app points at it.
    const builds = (await db.query(`SELECT b.build_id FROM "${schema}".builds b JOIN "${schema}".apps a ON a.id = b.app_id WHERE a.name = 'game'`)).rows;
    expect(builds.map((r) => Number(r.build_id))).toEqual([1]);
    expect(done).toHaveLength(3);
    const appNow = await call('GET', '/be/v1/apps/game', h);
    expect(appNow.status, appNow.text).toBe(200);
    expect(appNow.json.app).toMatchObject({ iCurBuild: 1, dxfName: 'b0001-t000', processing: false, error: null });
    expect(appNow.json.app.builds).toHaveLength(1);

    // release.json from the S3 depot, read through the API node's /cdn.
    const relRes = await fetch(`${base}/cdn/dxf/cluster_org/game/release.json`);
    expect(relRes.status).toBe(200);
    const rel = (await relRes.json()) as any;
    expect(rel).toMatchObject({ buildId: 1, buildName: '1.0.0', dxfName: 'b0001-t000', patches: [] });
    // Written once: by B's deploy (A died in mkraw, before any deploy ran).
    const releasePuts = s3.requests().filter((x) => x.startsWith('PUT ') && x.includes('/cdn/dxf/cluster_org/game/release.json'));
    expect(releasePuts).toHaveLength(1);
    const imageUrl = `${base}/cdn/${rel.image.path}`;
    const report = await verifyImage(imageUrl);
    expect(report).toMatchObject({ ok: true, damagedChunks: [], damagedFiles: [], missingPacks: [] });
    expect(report.chunksChecked).toBeGreaterThan(0);
    const out = path.join(tmp, 'extracted');
    const r = await extractImage({ source: imageUrl, outDir: out, threads: 0 });
    expect(r.files).toBe(files.filter((f) => f.type !== 'directory').length);
    const expected: Record<string, string> = {};
    for (const f of files) if (f.type !== 'directory') expected[f.name] = Buffer.from(f.content ?? '').toString('base64');
    expect(await readTree(out)).toEqual(expected);
  }, 180_000);
});
