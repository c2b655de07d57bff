// Pipeline benchmark (issue 4 item 11): one generated build imported through the real server (client upload →
// dltar → mkraw → deploy, published on an `fs` origin) against the engine alone on the same tar in the same run
// (buildImage, then a copy of the image folder = what an fs origin receives). Prints a markdown table and writes
// it to --out. Loopback only; bounded by --max-seconds; stops its children and removes its temp folders on every
// exit path. Needs the built packages (packages/*/dist). See README.md.
/* global fetch */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

import { createRunGuard, freePort, serverEnv, waitHealthy } from '../lib/run-guard.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const serverBin = join(root, 'packages/server/dist/bin.js');
const cliBin = join(root, 'packages/cli/dist/bin.js');
const engineIndex = join(root, 'packages/engine/dist/index.js');
const engineOp = join(here, 'engine-op.mjs');

const { values: opt } = parseArgs({
  options: {
    size: { type: 'string', default: '1GB' },
    seed: { type: 'string', default: '9' },
    'max-seconds': { type: 'string', default: '1500' },
    'log-level': { type: 'string', default: 'warn' },
    repeat: { type: 'string', default: '1' },
    'poll-ms': { type: 'string', default: '250' },
    out: { type: 'string', default: join(here, 'results.md') },
    'cpu-prof': { type: 'string', default: '' },
  },
});

/** Bad command line: a one-line message and exit code 2. */
function usage(message) {
  process.stderr.write(`bench/pipeline: ${message}\n`);
  process.exit(2);
}
const maxSeconds = Number(opt['max-seconds']);
if (!Number.isSafeInteger(maxSeconds) || maxSeconds < 10) usage('--max-seconds must be an integer ≥ 10');
if (!/^\d+$/.test(opt.seed)) usage('--seed must be a non-negative integer');
const repeat = Number(opt.repeat);
if (!Number.isSafeInteger(repeat) || repeat < 1 || repeat > 20) usage('--repeat must be an integer from 1 to 20');
const pollMs = Number(opt['poll-ms']);
if (!Number.isSafeInteger(pollMs) || pollMs < 20 || pollMs > 10_000) usage('--poll-ms must be an integer from 20 to 10000');

const ORG = 'bench_pipe';
const APP = 'pipe';
const DEPLOYMENT = 'origin_fs';

// ---------- cleanup of everything this run started or created (bench/lib/run-guard.mjs) ----------

const guard = createRunGuard({ name: 'pipe', maxSeconds });
const { tempDir, spawnNode, stopChild } = guard;

// ---------- machine ----------

function machine() {
  const cpus = os.cpus();
  return {
    nproc: os.availableParallelism?.() ?? cpus.length,
    cpu: cpus[0]?.model ?? 'unknown',
    node: process.version,
    memGiB: (os.totalmem() / 1024 ** 3).toFixed(1),
  };
}
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' / ');

function folderBytes(dir) {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += statSync(join(e.parentPath ?? e.path, e.name)).size;
  }
  return total;
}

/** User+system CPU seconds of a live process, all threads (Linux /proc; undefined elsewhere). */
function cpuOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const tick = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    return (Number(f[11]) + Number(f[12])) / tick;
  } catch {
    return undefined;
  }
}

// ---------- steps ----------

async function generate(dir) {
  const t0 = performance.now();
  await spawnNode([cliBin, 'gamegen', 'build', '--seed', opt.seed, '--size', opt.size, '--versions', '1', '--out', dir, '--tar', '--json']).done;
  const tar = readdirSync(dir, { recursive: true }).map(String).find((p) => p.endsWith('.tar'));
  if (!tar) throw new Error(`gamegen wrote no tar in ${dir}`);
  return { tar: join(dir, tar), seconds: (performance.now() - t0) / 1000 };
}

async function engineAlone(tar) {
  const work = tempDir('engine');
  const t0 = performance.now();
  const out = await spawnNode([engineOp, engineIndex, tar, join(work, 'image'), join(work, 'origin')]).done;
  const wall = (performance.now() - t0) / 1000;
  const r = JSON.parse(out.trim().split('\n').pop());
  const imageBytes = folderBytes(join(work, 'image'));
  guard.removeDir(work);
  return { ...r, wallSeconds: wall, imageBytes };
}

async function api(base, method, path, { body, headers = {} } = {}) {
  const r = await fetch(base + path, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${method} ${path} → ${r.status} ${JSON.stringify(json)}`);
  return json;
}

/** Streams a file as the body of a PUT with Content-Length (node:http, no buffering). Resolves with the JSON answer. */
function putFile(url, file) {
  const size = statSync(file).size;
  return new Promise((res, rej) => {
    const req = http.request(url, { method: 'PUT', headers: { 'content-type': 'application/x-tar', 'content-length': size } }, (resp) => {
      let text = '';
      resp.setEncoding('utf8');
      resp.on('data', (c) => (text += c));
      resp.on('end', () => {
        if (resp.statusCode !== 200) rej(new Error(`PUT upload → ${resp.statusCode} ${text}`));
        else res(JSON.parse(text));
      });
    });
    req.on('error', rej);
    const src = createReadStream(file);
    src.on('error', rej);
    src.pipe(req);
  });
}

async function throughServer(tar) {
  const port = await freePort();
  const dataDir = tempDir('data');
  const originDir = tempDir('origin');
  const adminToken = randomBytes(24).toString('hex');
  const env = serverEnv({
    ROCKIT_ADMIN_TOKEN: adminToken,
    ROCKIT_LOG_LEVEL: opt['log-level'],
    ROCKIT_AUTH_SECONDS: '3600',
    ROCKIT_SCRYPT_COST: '1024',
    ROCKIT_WORKER_POLL_MS: '100',
  });
  const profArgs = opt['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(opt['cpu-prof'])}`] : [];
  const child = spawnNode([...profArgs, serverBin, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data', dataDir], env);
  const base = `http://127.0.0.1:${port}`;
  await waitHealthy(child, base);

  const created = await api(base, 'POST', '/adm/v1/orgs', { body: { name: ORG }, headers: { 'x-rockit-admin-token': adminToken } });
  const login = await api(base, 'POST', '/be/v1/login', { body: { orgName: ORG, username: created.admin.username, password: created.admin.password } });
  const auth = await api(base, 'POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': login.session.token } });
  const h = { 'x-rockit-beauth-token': auth.auth.token };
  await api(base, 'POST', '/be/v1/deployments', { body: { name: DEPLOYMENT, type: 'fs', fs: { path: originDir } }, headers: h });
  await api(base, 'POST', '/be/v1/apps', { body: { name: APP, label: 'Pipeline bench', deployments: [DEPLOYMENT] }, headers: h });
  const releaseFile = join(originDir, 'dxf', ORG, APP, 'release.json');

  const cpu0 = cpuOf(child.pid);
  const t0 = performance.now();
  const now = () => (performance.now() - t0) / 1000;
  const imp = await api(base, 'POST', '/be/v1/builds', { body: { appName: APP, buildName: 'bench' }, headers: h });
  // Client-side view of the tasks, in ms (task fields are whole seconds): when each was first seen running and
  // finished, and when mkraw's progress first reached the end of its image phase (0.9 × 0.99 of the task, the
  // rest being the copy of the image into the depot).
  const seen = {};
  let tasks = [];
  let uploadDone = false;
  let uploadSeconds;
  const upload = putFile(imp.upload.url, tar).then(() => {
    uploadSeconds = now();
    uploadDone = true;
  });
  upload.catch(() => {});
  for (;;) {
    const list = await api(base, 'GET', `/be/v1/tasks?appName=${APP}&limit=100`, { headers: h });
    tasks = list.tasks;
    const t = now();
    for (const task of tasks) {
      const s = (seen[task.type] ??= {});
      if (task.status === 'running') s.running ??= t;
      if (task.status === 'succeeded') s.succeeded ??= t;
      if (task.type === 'mkraw' && task.progress >= 0.89) s.imageBuilt ??= t;
    }
    const failed = tasks.find((x) => x.status === 'failed' || x.status === 'canceled' || x.status === 'expired');
    if (failed) throw new Error(`task ${failed.type} ${failed.status}: ${JSON.stringify(failed.error)}`);
    const deploy = tasks.filter((x) => x.type === 'deploy');
    if (uploadDone && deploy.length > 0 && deploy.every((x) => x.status === 'succeeded') && existsSync(releaseFile)) break;
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}) during the import:\n${child.tail}`);
    await Promise.race([sleep(pollMs), upload]);
  }
  await upload;
  const totalSeconds = (performance.now() - t0) / 1000;
  const cpu1 = cpuOf(child.pid);
  const cpuSeconds = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
  const stage = (type) => {
    const ts = tasks.filter((t) => t.type === type);
    if (ts.length === 0) return undefined;
    const started = Math.min(...ts.map((t) => t.started ?? Infinity));
    const ended = Math.max(...ts.map((t) => t.ended ?? -Infinity));
    return { started, ended, seconds: ended - started, count: ts.length };
  };
  const app = (await api(base, 'GET', `/be/v1/apps/${APP}`, { headers: h })).app;
  const originBytes = folderBytes(originDir);
  await stopChild(child);
  return {
    uploadSeconds,
    totalSeconds,
    cpuSeconds,
    seen,
    stages: { dltar: stage('dltar'), mkraw: stage('mkraw'), deploy: stage('deploy') },
    taskTypes: [...new Set(tasks.map((t) => t.type))],
    originBytes,
    appSizeBytes: app.sizeBytes,
  };
}

// ---------- report ----------

const mb = (b) => (b / 1e6).toFixed(1);
const sec = (s) => (s === undefined ? 'n/a' : s.toFixed(1));
const rate = (bytes, s) => (bytes / 1e6 / s).toFixed(1);

function report({ m, loadBefore, loadAfter, tarBytes, gen, eng, srv }) {
  const engTotal = eng.buildSeconds + eng.copySeconds;
  const st = srv.stages;
  const lines = [
    `## Pipeline benchmark — ${new Date().toISOString()} (--size ${opt.size}, --repeat ${repeat}, --poll-ms ${pollMs})`,
    '',
    `Build: gamegen seed ${opt.seed}, size ${opt.size} → tar ${mb(tarBytes)} MB (generated in ${sec(gen.seconds)} s);` +
      ` image ${mb(eng.imageBytes)} MB, ${eng.stats.files} files, dedup ${eng.stats.dedupRatio.toFixed(2)}.`,
    '',
    '| path | seconds | MB/s (tar bytes) | ratio vs engine build+copy |',
    '|---|---:|---:|---:|',
    `| engine alone: buildImage | ${sec(eng.buildSeconds)} | ${rate(tarBytes, eng.buildSeconds)} | ${(eng.buildSeconds / engTotal).toFixed(2)} |`,
    `| engine alone: buildImage + copy to a 2nd folder | ${sec(engTotal)} | ${rate(tarBytes, engTotal)} | 1.00 |`,
    `| server: POST /be/v1/builds → release.json on the fs origin | ${sec(srv.totalSeconds)} | ${rate(tarBytes, srv.totalSeconds)} | **${(srv.totalSeconds / engTotal).toFixed(2)}** |`,
    '',
    `Ratio server / engine build alone: ${(srv.totalSeconds / eng.buildSeconds).toFixed(2)}.` +
      ` CPU seconds (user+system, all threads): engine child ${sec(eng.cpuSeconds)}, server process during the import ${sec(srv.cpuSeconds)}.`,
    '',
    'Server stages (upload timed by the client; the others from the tasks\' `started`/`ended`, whole seconds):',
    '',
    '| stage | seconds |',
    '|---|---:|',
    `| upload (PUT, client side) | ${sec(srv.uploadSeconds)} |`,
    `| dltar | ${sec(st.dltar?.seconds)} |`,
    `| mkraw | ${sec(st.mkraw?.seconds)} |`,
    `| deploy${st.deploy && st.deploy.count > 1 ? ` (${st.deploy.count} tasks)` : ''} | ${sec(st.deploy?.seconds)} |`,
    `| dltar start → deploy end | ${st.dltar && st.deploy ? sec(st.deploy.ended - st.dltar.started) : 'n/a'} |`,
    '',
    `Seen by the client (polling every ${pollMs} ms; seconds since POST /be/v1/builds):`,
    '',
    '| event | at |',
    '|---|---:|',
    `| upload PUT answered | ${sec(srv.uploadSeconds)} |`,
    ...['dltar', 'mkraw', 'deploy'].flatMap((ty) => [
      `| ${ty} running | ${sec(srv.seen[ty]?.running)} |`,
      ...(ty === 'mkraw' ? [`| mkraw image built (progress ≥ 0.89; then image → depot) | ${sec(srv.seen.mkraw?.imageBuilt)} |`] : []),
      `| ${ty} succeeded | ${sec(srv.seen[ty]?.succeeded)} |`,
    ]),
    `| release.json on the origin | ${sec(srv.totalSeconds)} |`,
    '',
    `Published on the fs origin: ${mb(srv.originBytes)} MB. Task types seen: ${srv.taskTypes.join(', ')}.`,
    '',
    `Machine: ${m.nproc} cores (${m.cpu}), ${m.memGiB} GiB RAM, Node ${m.node}. Load average (1/5/15 min) before ${loadBefore}, after ${loadAfter}.`,
    '',
  ];
  return lines.join('\n');
}

async function main() {
  const m = machine();
  const loadBefore = load();
  const genDir = tempDir('gen');
  process.stderr.write(`generating ${opt.size}...\n`);
  const gen = await generate(genDir);
  const tarBytes = statSync(gen.tar).size;
  process.stderr.write(`tar ${mb(tarBytes)} MB in ${sec(gen.seconds)} s; engine alone...\n`);
  // Engine and server alternate, so a neighbour's load hits both sides alike; the detailed tables are those of the
  // pair with the median ratio, and every pair is listed.
  const pairs = [];
  for (let i = 0; i < repeat; i++) {
    const eng = await engineAlone(gen.tar);
    process.stderr.write(`[${i + 1}/${repeat}] engine build ${sec(eng.buildSeconds)} s + copy ${sec(eng.copySeconds)} s; through the server...\n`);
    const srv = await throughServer(gen.tar);
    const ratio = srv.totalSeconds / (eng.buildSeconds + eng.copySeconds);
    process.stderr.write(`[${i + 1}/${repeat}] server ${sec(srv.totalSeconds)} s; ratio ${ratio.toFixed(2)}\n`);
    pairs.push({ eng, srv, ratio, load: load() });
  }
  const sorted = [...pairs].sort((a, b) => a.ratio - b.ratio);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  const loadAfter = load();
  let md = report({ m, loadBefore, loadAfter, tarBytes, gen, eng: median.eng, srv: median.srv });
  if (pairs.length > 1) {
    md += [
      `All ${pairs.length} pairs (engine, then server; the tables above are the pair with the median ratio, ${median.ratio.toFixed(2)}):`,
      '',
      '| pair | engine build+copy s | server s | ratio | load after |',
      '|---:|---:|---:|---:|---|',
      ...pairs.map((p, i) => `| ${i + 1} | ${sec(p.eng.buildSeconds + p.eng.copySeconds)} | ${sec(p.srv.totalSeconds)} | ${p.ratio.toFixed(2)} | ${p.load} |`),
      '',
    ].join('\n');
  }
  process.stdout.write(md);
  const prev = existsSync(opt.out) ? readFileSync(opt.out, 'utf8') : '# Pipeline benchmark results\n\n';
  writeFileSync(opt.out, prev + md + '\n');
  process.stderr.write(`appended to ${relative(process.cwd(), opt.out)}\n`);
}

let code = 0;
try {
  await main();
} catch (e) {
  process.stderr.write(`bench/pipeline failed: ${e.stack ?? e}\n`);
  code = 1;
} finally {
  await guard.done();
}
process.exit(code);
