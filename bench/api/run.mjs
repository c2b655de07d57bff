// API benchmark: requests per second and latency of an authenticated list request (GET /be/v1/users?limit=10)
// on the real server (`rockit-edge serve` as a child process), with an auth token and with the API-key trio,
// next to a bare Fastify 5 route answering the same bytes, on SQLite and on PostgreSQL. Prints markdown and
// writes it to --out. Needs `npx tsc -b` first (it runs packages/server/dist/bin.js). See README.md.
/* global fetch */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { URL, fileURLToPath } from 'node:url';
import { Buffer } from 'node:buffer';
import { clearTimeout, setTimeout } from 'node:timers';
import process from 'node:process';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';

import { createRunGuard, freePort, serverEnv, waitHealthy } from '../lib/run-guard.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const serverBin = join(root, 'packages/server/dist/bin.js');
const bareServer = join(here, 'bare-server.mjs');

const { values: opt } = parseArgs({
  options: {
    db: { type: 'string', default: 'sqlite,pg' },
    'pg-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    'server-warmup': { type: 'string', default: '4' },
    connections: { type: 'string', default: '32' },
    pipelining: { type: 'string', default: '1' },
    users: { type: 'string', default: '50' },
    limit: { type: 'string', default: '10' },
    'log-level': { type: 'string', default: 'warn' },
    'max-seconds': { type: 'string', default: '175' },
    out: { type: 'string', default: join(here, 'results.md') },
    // Profile the real server: a V8 .cpuprofile per server process in this folder (open in Chrome DevTools).
    'cpu-prof': { type: 'string' },
  },
});

/** Bad command line: a one-line message and exit code 2. */
function usage(message) {
  process.stderr.write(`bench/api: ${message}\n`);
  process.exit(2);
}

const posInt = (name) => {
  const n = Number(opt[name]);
  if (!Number.isSafeInteger(n) || n < 0) usage(`--${name} must be a non-negative integer (got '${opt[name]}')`);
  return n;
};
const settings = {
  dbs: opt.db.split(',').map((s) => s.trim()).filter(Boolean),
  durationSeconds: posInt('duration'),
  warmupSeconds: posInt('warmup'),
  serverWarmupSeconds: posInt('server-warmup'),
  connections: posInt('connections'),
  pipelining: posInt('pipelining'),
  users: posInt('users'),
  limit: posInt('limit'),
  maxSeconds: posInt('max-seconds'),
};
for (const d of settings.dbs) if (d !== 'sqlite' && d !== 'pg') usage(`--db takes sqlite and/or pg (got '${d}')`);
const pgUrl = new URL(opt['pg-url']);
// Only loopback: the benchmark must never load another machine.
if (!['127.0.0.1', 'localhost', '[::1]'].includes(pgUrl.hostname)) usage('--pg-url must point at a loopback address');
if (settings.durationSeconds < 1 || settings.connections < 1 || settings.pipelining < 1) usage('--duration, --connections and --pipelining must be at least 1');

const ORG = 'bench_org';
const READER_ROLE = 'UserReaders';
const BOT = 'bench_bot';
const LIST_PATH = `/be/v1/users?limit=${settings.limit}`;

// ---------- cleanup of everything this run started or created (bench/lib/run-guard.mjs) ----------

const guard = createRunGuard({ name: 'api', maxSeconds: settings.maxSeconds });
const { tempDir, spawnNode, stopChild } = guard;
const pgSchemas = new Set();

async function dropSchema(schema) {
  const client = new pg.Client({ connectionString: opt['pg-url'] });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
  pgSchemas.delete(schema);
}
guard.onCleanup(async () => {
  for (const s of [...pgSchemas]) await dropSchema(s).catch((e) => process.stderr.write(`could not drop schema ${s}: ${e.message}\n`));
});

// ---------- child processes ----------

async function startEdge(db, adminToken) {
  const port = await freePort();
  const dataDir = tempDir('data');
  const env = serverEnv({
    ROCKIT_ADMIN_TOKEN: adminToken,
    ROCKIT_LOG_LEVEL: opt['log-level'],
    // The auth token must outlive the run (default 5 min).
    ROCKIT_AUTH_SECONDS: '3600',
    // Only seeding hashes passwords (the measured requests hash tokens with SHA-256): keep seeding fast.
    ROCKIT_SCRYPT_COST: '1024',
  });
  let schema;
  if (db === 'pg') {
    schema = `bench_api_${process.pid}_${randomBytes(4).toString('hex')}`;
    pgSchemas.add(schema);
    env.ROCKIT_DATABASE_URL = opt['pg-url'];
    env.ROCKIT_DATABASE_SCHEMA = schema;
  }
  const profile = opt['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(opt['cpu-prof'])}`] : [];
  const child = spawnNode([...profile, serverBin, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data', dataDir], env);
  const base = `http://127.0.0.1:${port}`;
  await waitHealthy(child, base);
  return { child, base, dataDir, schema };
}

async function startBare(body) {
  const dir = tempDir('bare');
  const file = join(dir, 'body.json');
  writeFileSync(file, body);
  const child = spawnNode([bareServer, file], process.env);
  const port = await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`bare server did not start:\n${child.tail}`)), 30_000);
    child.on('exit', (code) => {
      clearTimeout(t);
      rej(new Error(`bare server exited (${code}):\n${child.tail}`));
    });
    let buf = '';
    child.stdout.on('data', (b) => {
      buf += b.toString();
      const m = /\{"port":(\d+)\}/.exec(buf);
      if (m) {
        clearTimeout(t);
        res(Number(m[1]));
      }
    });
  });
  return { child, base: `http://127.0.0.1:${port}` };
}

// ---------- API calls ----------

async function call(base, method, path, { headers = {}, body } = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

async function expectStatus(promise, expected, what) {
  const r = await promise;
  if (r.status !== expected) throw new Error(`${what}: expected HTTP ${expected}, got ${r.status}: ${r.text.slice(0, 400)}`);
  return r.json;
}

/**
 * Creates the org (admin API), logs its admin in, exchanges the session for an auth token, creates a role
 * that reads users and a machine user holding it (its API key), then `users` more users with that role.
 */
async function seed(base, adminToken) {
  const org = await expectStatus(
    call(base, 'POST', '/adm/v1/orgs', { headers: { 'x-rockit-admin-token': adminToken }, body: { name: ORG, label: 'Benchmark' } }),
    201, 'create org',
  );
  const login = await expectStatus(
    call(base, 'POST', '/be/v1/login', { body: { orgName: ORG, username: org.admin.username, password: org.admin.password } }),
    200, 'login',
  );
  const auth = await expectStatus(
    call(base, 'POST', '/be/v1/auth', { headers: { 'x-rockit-besession-token': login.session.token } }),
    200, 'auth token',
  );
  const asAdmin = { 'x-rockit-beauth-token': auth.auth.token };
  await expectStatus(
    call(base, 'POST', '/be/v1/roles', { headers: asAdmin, body: { name: READER_ROLE, label: 'Reads users', permissions: { beUsers: 2 } } }),
    201, 'create role',
  );
  const bot = await expectStatus(
    call(base, 'POST', '/be/v1/users', { headers: asAdmin, body: { username: BOT, label: 'Benchmark bot', roles: [READER_ROLE] } }),
    201, 'create machine user',
  );
  const ids = Array.from({ length: settings.users }, (_, i) => i + 1);
  // A few at a time: enough to keep seeding short without tripping anything.
  for (let i = 0; i < ids.length; i += 5) {
    await Promise.all(ids.slice(i, i + 5).map((n) => expectStatus(
      call(base, 'POST', '/be/v1/users', {
        headers: asAdmin,
        body: {
          username: `user_${String(n).padStart(3, '0')}`,
          email: `user${n}@bench.example`,
          firstname: 'Bench',
          surname: `User ${n}`,
          title: 'Tester',
          roles: [READER_ROLE],
        },
      }),
      201, `create user ${n}`,
    )));
  }
  return {
    authToken: auth.auth.token,
    apiKeyHeaders: { 'x-rockit-orgname': ORG, 'x-rockit-username': BOT, 'x-rockit-api-key': bot.apiKey.key },
    // admin + bot + seeded users
    expectedTotal: settings.users + 2,
  };
}

// ---------- measuring ----------

/** Checks one request answers 200 with a full page before loading the route; returns the body. */
async function probe(base, headers, expectedTotal) {
  const r = await call(base, 'GET', LIST_PATH, { headers });
  if (r.status !== 200) throw new Error(`probe ${base}${LIST_PATH}: HTTP ${r.status}: ${r.text.slice(0, 400)}`);
  const expectedItems = Math.min(settings.limit, expectedTotal);
  if (r.json?.total !== expectedTotal || r.json?.users?.length !== expectedItems) {
    throw new Error(`probe ${base}${LIST_PATH}: expected total ${expectedTotal} and ${expectedItems} users, got ${r.text.slice(0, 400)}`);
  }
  return r.text;
}

const CLOCK_TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU seconds (user + system) a process has used so far, from /proc (Linux); undefined elsewhere. Unlike
 * req/s, CPU per request hardly moves when other work competes for the cores.
 */
function cpuSecondsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces, hence the last ')'): utime is the 14th field, stime the 15th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Load whose figures are thrown away. */
async function warm(base, headers, seconds) {
  await autocannon({ url: base + LIST_PATH, headers, connections: settings.connections, pipelining: settings.pipelining, duration: seconds });
}

async function load(base, headers, pid) {
  const common = { url: base + LIST_PATH, headers, connections: settings.connections, pipelining: settings.pipelining };
  if (settings.warmupSeconds > 0) await warm(base, headers, settings.warmupSeconds);
  const cpuBefore = cpuSecondsOf(pid);
  const r = await autocannon({ ...common, duration: settings.durationSeconds });
  const cpuAfter = cpuSecondsOf(pid);
  return {
    rps: r.requests.mean,
    p50: r.latency.p50,
    p99: r.latency.p99,
    requests: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    cpuMsPerRequest: cpuBefore !== undefined && cpuAfter !== undefined && r.requests.total > 0
      ? ((cpuAfter - cpuBefore) * 1000) / r.requests.total
      : undefined,
  };
}

async function benchDb(db) {
  const adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
  const load1Before = os.loadavg()[0];
  const edge = await startEdge(db, adminToken);
  let bare;
  try {
    const seeded = await seed(edge.base, adminToken);
    const tokenHeaders = { 'x-rockit-beauth-token': seeded.authToken };
    const body = await probe(edge.base, tokenHeaders, seeded.expectedTotal);
    await probe(edge.base, seeded.apiKeyHeaders, seeded.expectedTotal);
    bare = await startBare(body);
    await probe(bare.base, {}, seeded.expectedTotal);

    const cases = [
      { name: 'bare Fastify 5 route (same JSON)', base: bare.base, headers: {}, pid: bare.child.pid },
      { name: 'auth token (`x-rockit-beauth-token`)', base: edge.base, headers: tokenHeaders, pid: edge.child.pid },
      { name: 'API key (`x-rockit-orgname` + `-username` + `-api-key`)', base: edge.base, headers: seeded.apiKeyHeaders, pid: edge.child.pid },
    ];
    // The first case measured on a fresh server paid for JIT compilation (a 2 s warm-up is only a few hundred requests
    // at these rates): warm up every credential path first so the order of the cases does not matter.
    if (settings.serverWarmupSeconds > 0) {
      for (const c of cases.slice(1)) {
        process.stderr.write(`[${db}] warming up: ${c.name}\n`);
        await warm(c.base, c.headers, settings.serverWarmupSeconds);
      }
    }
    const rows = [];
    for (const c of cases) {
      process.stderr.write(`[${db}] ${c.name} ...\n`);
      rows.push({ name: c.name, ...(await load(c.base, c.headers, c.pid)) });
    }
    // A token or key that stopped working mid-run would show as non-2xx above; here only check the server is still running.
    if (edge.child.exitCode !== null) throw new Error(`server died during the run:\n${edge.child.tail}`);
    return { db, rows, bodyBytes: Buffer.byteLength(body), load1Before, load1After: os.loadavg()[0] };
  } finally {
    if (bare) await stopChild(bare.child);
    await stopChild(edge.child);
    guard.removeDir(edge.dataDir);
    if (edge.schema) await dropSchema(edge.schema);
  }
}

async function pgReachable() {
  const client = new pg.Client({ connectionString: opt['pg-url'], connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (e) {
    return e.message;
  } finally {
    await client.end().catch(() => {});
  }
}

// ---------- report ----------

const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function machine() {
  const sh = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  const model = sh('lscpu', [])?.split('\n').find((l) => l.startsWith('Model name'))?.split(':')[1]?.trim() ?? os.cpus()[0]?.model;
  return {
    cores: sh('nproc', []) ?? String(os.availableParallelism()),
    model,
    node: process.version,
    commit: sh('git', ['-C', root, 'rev-parse', '--short', 'HEAD']),
  };
}

function table(result, bare) {
  const lines = [
    '| case | req/s (mean) | vs bare | p50 ms | p99 ms | p99 vs bare | server CPU ms/req | requests | non-2xx / errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of result.rows) {
    const isBare = r === bare;
    lines.push(
      `| ${r.name} | ${fmt(r.rps)} | ${isBare ? '1.00' : fmt(r.rps / bare.rps, 2)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ` +
        `${isBare ? '1.0×' : `${fmt(r.p99 / Math.max(bare.p99, 1), 1)}×`} | ` +
        `${r.cpuMsPerRequest === undefined ? 'n/a' : fmt(r.cpuMsPerRequest, 2)} | ${fmt(r.requests)} | ${r.non2xx} / ${r.errors} |`,
    );
  }
  return lines.join('\n');
}

function report(results, skipped, m, started) {
  const cmd = ['node', relative(root, join(here, 'run.mjs')), ...process.argv.slice(2)].join(' ');
  const out = [
    '## API (bench/api)',
    '',
    `Command (from the repository root, after \`npx tsc -b\`): \`${cmd}\``,
    '',
    `Machine: ${m.cores} cores (\`nproc\`), ${m.model}, Node.js ${m.node}; run ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC` +
      `${m.commit ? `, commit ${m.commit}` : ''}.`,
    `Load: autocannon 8, ${settings.connections} connections, pipelining ${settings.pipelining}, ${settings.warmupSeconds} s warm-up ` +
      `then ${settings.durationSeconds} s per case (the real server first warmed up ${settings.serverWarmupSeconds} s per credential kind), loopback only. Request: \`GET ${LIST_PATH}\` in an org of ${settings.users + 2} users ` +
      `(admin, one machine user, ${settings.users} seeded), each holding one role. Server: \`rockit-edge serve\` (embedded workers on), ` +
      `log level \`${opt['log-level']}\`. The bare route is Fastify 5 in its own process, no logger, answering the same JSON.`,
    '',
  ];
  for (const r of results) {
    const bare = r.rows[0];
    out.push(`### ${r.db === 'pg' ? 'PostgreSQL' : 'SQLite'}`, '');
    out.push(`Response body ${fmt(r.bodyBytes)} bytes. 1-minute load average before ${fmt(r.load1Before, 2)}, after ${fmt(r.load1After, 2)}.`, '');
    out.push(table(r, bare), '');
  }
  for (const s of skipped) out.push(`${s.db}: skipped (${s.reason}).`, '');
  out.push(
    '"vs bare" is req/s of the case divided by req/s of the bare route in the same database run; "p99 vs bare" the ratio of p99 latencies. ' +
      '"server CPU ms/req" is the user + system CPU time of the serving process (the real server or the bare one; not PostgreSQL, ' +
      'not the load generator) during the measured seconds, divided by the requests answered: it moves far less than req/s when other ' +
      'work competes for the cores. ' +
      'Load generator and servers share the same cores, so absolute figures are lower than on a dedicated machine; the ratios are the ' +
      'comparable part. A load average well above the core count means other work ran on the machine at the same time and the figures ' +
      'are indicative only.',
    '',
  );
  return out.join('\n');
}

// ---------- main ----------

async function main() {
  const started = new Date();
  const results = [];
  const skipped = [];
  for (const db of settings.dbs) {
    if (db === 'pg') {
      const why = await pgReachable();
      if (why) {
        skipped.push({ db: 'PostgreSQL', reason: `not reachable at ${opt['pg-url']}: ${why}` });
        continue;
      }
    }
    results.push(await benchDb(db));
  }
  const md = report(results, skipped, machine(), started);
  process.stdout.write(md);
  writeFileSync(opt.out, md);
  process.stderr.write(`written to ${opt.out}\n`);
}

try {
  await main();
} catch (e) {
  process.stderr.write(`bench/api failed: ${e.stack ?? e}\n`);
  process.exitCode = 1;
} finally {
  await guard.done();
}
