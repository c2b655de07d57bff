// Delta push benchmark (issue 13 item 4): a generated build and a 2 % change of it, pushed through the real
// server and the real `rockit` command twice in the same run — the whole tar (`--full`, the reference) and
// the delta (the default) — comparing bytes sent and the wall time of `rockit push` until the release is
// published. `--mbit N` sends the uploads through a throttling proxy (N Mbit/s; the small JSON requests,
// among them the chunk question, are not throttled). Prints a markdown table and writes it to --out.
// Needs the built packages (npx tsc -b). Loopback only; bounded by --max-seconds; cleans up on every exit.
/* global fetch */
import { Buffer } from 'node:buffer';
import { setTimeout } from 'node:timers';
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';

import { createRunGuard, freePort, serverEnv, waitHealthy } from '../lib/run-guard.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const serverBin = join(root, 'packages/server/dist/bin.js');
const cliBin = join(root, 'packages/cli/dist/bin.js');

const { values: opt } = parseArgs({
  options: {
    size: { type: 'string', default: '64MB' },
    seed: { type: 'string', default: '21' },
    mbit: { type: 'string' },
    change: { type: 'string', default: '0.02' },
    'max-seconds': { type: 'string', default: '1800' },
    out: { type: 'string', default: join(here, 'results.md') },
  },
});
function usage(message) {
  process.stderr.write(`bench/delta: ${message}\n`);
  process.exit(2);
}
if (!/^\d+(\.\d+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/i.test(opt.size)) usage('--size like 64MB or 1GB');
const mbit = opt.mbit === undefined ? undefined : Number(opt.mbit);
if (mbit !== undefined && !(mbit > 0 && mbit <= 100_000)) usage('--mbit must be a number of Mbit/s (0 < N ≤ 100000)');
const change = Number(opt.change);
if (!(change > 0 && change < 1)) usage('--change must be a fraction between 0 and 1');
const maxSeconds = Number(opt['max-seconds']);
if (!Number.isSafeInteger(maxSeconds) || maxSeconds < 10) usage('--max-seconds must be an integer ≥ 10');

const guard = createRunGuard({ name: 'delta', maxSeconds });
const { tempDir, spawnNode, stopChild } = guard;
const ORG = 'bench_delta';

/**
 * A TCP proxy that forwards upload connections (`PUT /be/v1/uploads/…`) no faster than `bytesPerSecond`
 * and everything else as is.
 */
function throttleProxy(targetPort, bytesPerSecond) {
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let isUpload;
    let budgetStart = performance.now();
    let sent = 0;
    client.on('data', (chunk) => {
      isUpload ??= /^PUT \/be\/v1\/uploads\//.test(chunk.toString('latin1', 0, 40));
      upstream.write(chunk);
      if (!isUpload) return;
      sent += chunk.length;
      const due = budgetStart + (sent / bytesPerSecond) * 1000;
      const wait = due - performance.now();
      if (wait > 1) {
        client.pause();
        setTimeout(() => client.resume(), wait);
      }
      if (sent > 64 * 1024 * 1024) {
        budgetStart = due;
        sent = 0;
      }
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  return new Promise((res) =>
    server.listen(0, '127.0.0.1', () =>
      res({
        port: server.address().port,
        close: () => {
          for (const s of sockets) s.destroy();
          return new Promise((r) => server.close(() => r()));
        },
      }),
    ),
  );
}

/** v2 = v1 with `fraction` of its bytes rewritten in place (spread over the largest files) and a new small file. */
function makeChange(v1, v2, fraction) {
  cpSync(v1, v2, { recursive: true, preserveTimestamps: true });
  const files = readdirSync(v2, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name))
    .map((p) => ({ p, size: statSync(p).size }))
    .sort((a, b) => b.size - a.size);
  const total = files.reduce((n, f) => n + f.size, 0);
  let left = Math.floor(total * fraction);
  // Four edits in each of the largest files until the budget is spent: edits scattered like a real patch's.
  for (const f of files) {
    if (left <= 0) break;
    const data = readFileSync(f.p);
    const per = Math.min(Math.ceil(left / 4), Math.floor(data.length / 8));
    for (let k = 0; k < 4 && left > 0; k++) {
      const at = Math.floor(((k * 2 + 1) * data.length) / 8);
      const n = Math.min(per, left);
      randomBytes(n).copy(data, at);
      left -= n;
    }
    writeFileSync(f.p, data);
  }
  writeFileSync(join(v2, 'patch-notes.txt'), `changed ${fraction * 100} %\n`);
  return total;
}

async function main() {
  const work = tempDir('work');
  const series = join(work, 'series');
  const t0 = performance.now();
  await spawnNode([cliBin, 'gamegen', 'build', '--seed', opt.seed, '--size', opt.size, '--versions', '1', '--json', '--out', series]).done;
  const v1 = join(series, 'v1');
  const v2 = join(work, 'v2');
  const contentBytes = makeChange(v1, v2, change);
  const genSeconds = (performance.now() - t0) / 1000;

  const port = await freePort();
  const proxy = mbit !== undefined ? await throttleProxy(port, (mbit * 1e6) / 8) : undefined;
  guard.onCleanup(async () => {
    await proxy?.close();
  });
  const front = `http://127.0.0.1:${proxy?.port ?? port}`;
  const adminToken = randomBytes(24).toString('hex');
  const env = serverEnv({
    ROCKIT_ADMIN_TOKEN: adminToken, ROCKIT_LOG_LEVEL: 'warn', ROCKIT_SCRYPT_COST: '1024', ROCKIT_WORKER_POLL_MS: '100',
    ROCKIT_PUBLIC_URL: front, ROCKIT_MAX_UPLOAD_BYTES: String(64 * 1024 ** 3),
  });
  const server = spawnNode([serverBin, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data', tempDir('data')], env);
  const base = `http://127.0.0.1:${port}`;
  await waitHealthy(server, base);
  const api = async (method, path, body, headers) => {
    const r = await fetch(base + path, { method, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await r.json();
    if (!r.ok) throw new Error(`${method} ${path} → ${r.status} ${JSON.stringify(json)}`);
    return json;
  };
  const created = await api('POST', '/adm/v1/orgs', { name: ORG }, { 'x-rockit-admin-token': adminToken });
  const login = await api('POST', '/be/v1/login', { orgName: ORG, username: created.admin.username, password: created.admin.password });
  const h = { 'x-rockit-beauth-token': (await api('POST', '/be/v1/auth', undefined, { 'x-rockit-besession-token': login.session.token })).auth.token };
  // A CI-style machine user: the CLI runs on its API key (ROCKIT_* variables), no stored login.
  const machine = await api('POST', '/be/v1/users', { username: 'ci', label: 'bench', roles: ['Administrators'] }, h);
  for (const app of ['full', 'delta']) await api('POST', '/be/v1/apps', { name: app, label: app }, h);
  const cliEnv = {
    ...serverEnv({}), XDG_CONFIG_HOME: tempDir('cfg'), HOME: work,
    ROCKIT_SERVER: front, ROCKIT_ORG: ORG, ROCKIT_USER: 'ci', ROCKIT_API_KEY: machine.apiKey.key,
  };
  const rockit = (args) => spawnNode([cliBin, ...args], cliEnv).done;
  const push = async (folder, app, extra) => {
    const s = performance.now();
    const out = await rockit(['push', folder, `${ORG}/${app}`, '--json', ...extra]);
    return { seconds: (performance.now() - s) / 1000, summary: JSON.parse(out) };
  };
  const first = {};
  for (const app of ['full', 'delta']) first[app] = await push(v1, app, ['--name', '1']);
  // Reference first, then the delta; both on the same server, the same v1 kept, the same v2.
  const full = await push(v2, 'full', ['--name', '2', '--full']);
  const delta = await push(v2, 'delta', ['--name', '2']);
  const rel = async (app) => (await fetch(`${base}/cdn/dxf/${ORG}/${app}/release.json`)).json();
  const [ra, rb] = [await rel('full'), await rel('delta')];
  const manifest = async (r) => createHash('sha256').update(Buffer.from(await (await fetch(`${base}/cdn/${r.image.path}${r.image.manifest}`)).arrayBuffer())).digest('hex');
  const sameImage = (await manifest(ra)) === (await manifest(rb));
  await stopChild(server);
  return { genSeconds, contentBytes, first, full, delta, sameImage };
}

const mb = (b) => (b / 1e6).toFixed(1);
function report(r) {
  const d = r.delta.summary;
  const f = r.full.summary;
  // What the delta push sends besides the delta file: the chunk question (66 bytes of JSON an id, about).
  const askBytes = (d.chunkIds ?? 0) * 67;
  const sent = d.uploadedBytes + askBytes;
  const cpus = os.cpus();
  const lines = [
    `## Delta push — ${new Date().toISOString()} (--size ${opt.size}, --change ${change}${mbit !== undefined ? `, --mbit ${mbit}` : ', loopback'})`,
    '',
    `Machine: ${os.availableParallelism?.() ?? cpus.length} cores, ${cpus[0]?.model ?? '?'}, Node ${process.version}; load ${os.loadavg().map((x) => x.toFixed(2)).join(' / ')}.`,
    `Build: gamegen seed ${opt.seed}, ${mb(r.contentBytes)} MB of files; v2 rewrites ${(change * 100).toFixed(1)} % of the bytes in place (4 edits a file, largest files first) and adds a file. Generated in ${r.genSeconds.toFixed(1)} s.`,
    '',
    '| push of v2 | bytes sent | share of the build | seconds (rockit push → published) | ratio vs full |',
    '|---|---:|---:|---:|---:|',
    `| full tar (\`--full\`, reference) | ${mb(f.uploadedBytes)} MB | 100 % | ${r.full.seconds.toFixed(1)} | 1.00 |`,
    `| delta (${d.newChunks ?? '?'} of ${d.chunkIds ?? '?'} chunks new) | ${mb(sent)} MB (delta ${mb(d.uploadedBytes)} + chunk question ≈ ${mb(askBytes)}) | ${((100 * sent) / f.uploadedBytes).toFixed(1)} % | ${r.delta.seconds.toFixed(1)} | **${(r.delta.seconds / r.full.seconds).toFixed(2)}** |`,
    '',
    `First pushes of v1 (whole builds, not compared): ${r.first.full.seconds.toFixed(1)} s and ${r.first.delta.seconds.toFixed(1)} s. Published manifests of v2 identical: ${r.sameImage ? 'yes' : '**NO**'}.`,
    '',
  ];
  return lines.join('\n');
}

try {
  const r = await main();
  const text = report(r);
  process.stdout.write(text + '\n');
  writeFileSync(opt.out, text + '\n', { flag: 'a' });
} finally {
  await guard.done();
}
