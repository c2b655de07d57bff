#!/usr/bin/env node
// FastStart benchmark (issue 14 item 5): a generated build, generated play sessions, traces held out from
// training. For 1, 2, 4, 8, 12, 16, 32 training traces: the trained order + profile, then every held-out
// session simulated at 25/100/1000 Mbit/s with the profile's own preload — the launcher's wait (startup +
// stalls, with priority fetch), the stream alone, the per-session oracle and the plain full download.
// Also the training time on a 4× larger manifest (no payloads needed) and, with --real, a real program
// recorded with `rockit trace record`.
//
//   node bench/faststart/run.mjs [--size 1000000000] [--train 32] [--held 16] [--data .bench-data/faststart] [--out file.md] [--real | --real-only]
//     [--read-ahead BYTES]   the launcher's read-ahead of the file after a missed read (default FILE_READ_AHEAD_BYTES = 2 MiB, as the launcher; 0 = none)
//     [--variants]           also: median launcher wait for training-option variants at 12 and 32 traces
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { buildImage, FILE_READ_AHEAD_BYTES, openImage, openImageSource, parseAnyTrace, preloadBytes, simulateSession, trainStreamOrder } from '../../packages/engine/dist/index.js';
import { generateSeries, generateSessions } from '../../packages/gamegen/dist/index.js';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const SIZE = Number(opt('size', '1000000000'));
const TRAIN = Number(opt('train', '32'));
const HELD = Number(opt('held', '16'));
const DATA = resolve(opt('data', '.bench-data/faststart'));
const OUT = opt('out', '');
const REAL = args.includes('--real') || args.includes('--real-only');
const REAL_ONLY = args.includes('--real-only');
const READ_AHEAD = Number(opt('read-ahead', String(FILE_READ_AHEAD_BYTES)));
const VARIANTS = args.includes('--variants');
const CURVE = [1, 2, 4, 8, 12, 16, 32].filter((n) => n <= TRAIN);
const MBITS = [25, 100, 1000];
const bps = (mbit) => (mbit * 1e6) / 8;
const ROOT = fileURLToPath(new globalThis.URL('../..', import.meta.url));

const lines = [];
const log = (s = '') => {
  lines.push(s);
  process.stdout.write(s + '\n');
};
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
const sec = (ms) => `${(ms / 1000).toFixed(2)} s`;

/** The same build with its chunks in `order` (in memory, for simulation: packs and offsets do not matter). */
function reorder(m, order, profile) {
  const newIndex = new Int32Array(order.length);
  order.forEach((c, i) => (newIndex[c] = i));
  return { ...m, chunks: order.map((c) => m.chunks[c]), files: m.files.map((f) => ({ ...f, chunks: f.chunks.map((c) => newIndex[c]) })), profile };
}

function loadDir(dir) {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.rtrace'))
    .sort()
    .map((n) => parseAnyTrace(readFileSync(join(dir, n))));
}

async function prepare() {
  mkdirSync(DATA, { recursive: true });
  const buildDir = join(DATA, `build-${SIZE}`);
  if (!existsSync(join(buildDir, 'series.json'))) {
    rmSync(buildDir, { recursive: true, force: true });
    await generateSeries({ seed: 14, sizeBytes: SIZE, versions: 1, outDir: buildDir });
  }
  const img = join(DATA, `image-${SIZE}`);
  if (!existsSync(join(img, 'image.json'))) {
    rmSync(img, { recursive: true, force: true });
    await buildImage({ input: join(buildDir, 'v1'), outDir: img });
  }
  const train = join(DATA, `train-${SIZE}-${TRAIN}`);
  if (!existsSync(join(train, 'sessions.json'))) await generateSessions({ buildDir: join(buildDir, 'v1'), count: TRAIN, seed: 101, outDir: train });
  const held = join(DATA, `held-${SIZE}-${HELD}`);
  if (!existsSync(join(held, 'sessions.json'))) await generateSessions({ buildDir: join(buildDir, 'v1'), count: HELD, seed: 202, outDir: held });
  const source = openImageSource(img);
  const { manifest } = await openImage(source);
  await source.close();
  return { manifest, train: loadDir(train), held: loadDir(held) };
}

function evaluate(manifest, trainTraces, heldTraces, options = {}) {
  const t0 = process.hrtime.bigint();
  const r = trainStreamOrder(manifest, trainTraces, options);
  const trainMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const m = reorder(manifest, r.order, r.profile);
  const out = { trainMs, perBandwidth: {} };
  for (const mbit of MBITS) {
    const sims = heldTraces.map((t) => simulateSession(m, t, { bytesPerSecond: bps(mbit), fileReadAheadBytes: READ_AHEAD }));
    const ok = sims.filter((s) => s.priorityFetch.waitMs <= 1.2 * s.oracle.timeToPlayMs + 1000).length;
    out.perBandwidth[mbit] = {
      preload: preloadBytes(r.profile, bps(mbit)),
      launcher: median(sims.map((s) => s.priorityFetch.waitMs)),
      stream: median(sims.map((s) => s.stream.waitMs)),
      oracle: median(sims.map((s) => s.oracle.timeToPlayMs)),
      full: median(sims.map((s) => s.fullDownload.timeToPlayMs)),
      noStall: median(sims.map((s) => s.noStallPreloadBytes)),
      stalls: median(sims.map((s) => s.priorityFetch.stalls)),
      ok,
      n: sims.length,
    };
  }
  return out;
}

function bigManifest(m, copies) {
  // `copies` copies of the build side by side (copyK/<path>): copies × the chunks, as a larger build's manifest.
  const chunks = [];
  const files = [];
  for (let k = 0; k < copies; k++) {
    const base = chunks.length;
    for (const c of m.chunks) chunks.push({ ...c, hash: Uint8Array.from(c.hash, (b, i) => (i === 0 ? b ^ k : b)) });
    for (const f of m.files) files.push({ ...f, path: `copy${k}/${f.path}`, linkTarget: f.type === 'hardlink' ? `copy${k}/${f.linkTarget}` : f.linkTarget, chunks: f.chunks.map((c) => c + base) });
  }
  return { ...m, chunks, files, profile: undefined };
}

function spreadTraces(traces, copies) {
  // Each session plays on copy (i mod copies), so reads cover the whole larger build.
  return traces.map((t, i) => ({ header: t.header, records: t.records.map((r) => ({ ...r, path: `copy${i % copies}/${r.path}` })) }));
}

async function realProgram() {
  // A real program: the TypeScript compiler (node_modules/typescript) type-checking small inputs, recorded
  // under strace. Root = the typescript package; sessions differ by input and target (different lib files).
  const root = join(ROOT, 'node_modules/typescript');
  const work = join(DATA, 'real');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'traces'), { recursive: true });
  const cli = join(ROOT, 'packages/cli/dist/bin.js');
  const variants = [
    ['es5', 'dom'], ['es2015', 'dom'], ['es2017', 'dom'], ['es2020', 'dom'], ['es2022', 'dom'], ['esnext', 'dom'],
    ['es2018', 'webworker'], ['es2019', 'dom'], ['es2021', 'dom'], ['es2016', 'dom'],
  ];
  variants.forEach(([target, lib], i) => {
    const src = join(work, `in${i}.ts`);
    writeFileSync(src, `export const x${i}: number = ${i};\nconst m = new Map<string, number>();\nm.set('a', x${i});\n`);
    // tsc's own exit code (type errors in some lib combinations) does not matter: the trace is written anyway.
    spawnSync(process.execPath, [cli, 'trace', 'record', '--root', root, '--out', join(work, 'traces', `s${i}.rtrace`), '--session', `real-${i}`, '--',
      process.execPath, join(root, 'lib/tsc.js'), '--noEmit', '--target', target, '--lib', `${target},${lib}`, src], { stdio: 'ignore' });
  });
  await buildImage({ input: root, outDir: join(work, 'image') });
  const source = openImageSource(join(work, 'image'));
  const { manifest } = await openImage(source);
  await source.close();
  const traces = readdirSync(join(work, 'traces')).sort().map((n) => parseAnyTrace(readFileSync(join(work, 'traces', n))));
  return { manifest, train: traces.slice(0, 7), held: traces.slice(7), sizes: traces.map((t) => t.records.length) };
}

async function main() {
  const started = new Date().toISOString();
  if (REAL_ONLY) return real();
  const { manifest, train, held } = await prepare();
  const buildBytes = manifest.chunks.reduce((a, c) => a + c.storedSizeBytes, 0);
  log(`### FastStart (${started}; node bench/faststart/run.mjs ${args.join(' ')})`);
  log();
  log(`Generated build (gamegen seed 14, ${mb(SIZE)} requested): ${manifest.files.length} entries, ${manifest.chunks.length} chunks, ${mb(buildBytes)} stored. ` +
    `Training sessions: gamegen seed 101 (${train.length}); held-out sessions: seed 202 (${held.length}), never trained on. ` +
    `Medians over the held-out sessions; launcher = profile's preload + priority fetch (50 ms round trip, 256 KiB group${READ_AHEAD ? `, ${READ_AHEAD} bytes of file read-ahead` : ''}); target: launcher ≤ 1.2 × oracle + 1 s.`);
  log();
  log('| traces | Mbit/s | preload (% of build) | launcher wait | stream-only wait | oracle | full download | stalls (launcher) | sessions on target | train time |');
  log('|---|---|---|---|---|---|---|---|---|---|');
  for (const n of CURVE) {
    const e = evaluate(manifest, train.slice(0, n), held);
    for (const mbit of MBITS) {
      const b = e.perBandwidth[mbit];
      log(`| ${n} | ${mbit} | ${mb(b.preload)} (${((100 * b.preload) / buildBytes).toFixed(2)} %) | ${sec(b.launcher)} | ${sec(b.stream)} | ${sec(b.oracle)} | ${sec(b.full)} | ${b.stalls} | ${b.ok}/${b.n} | ${mbit === MBITS[0] ? `${e.trainMs.toFixed(0)} ms` : ''} |`);
    }
  }
  log();
  // Training time and memory on a 4× manifest (no payloads are read by training).
  for (const copies of [1, 4]) {
    const big = bigManifest(manifest, copies);
    const traces = spreadTraces(train, copies);
    globalThis.gc?.();
    const before = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    const r = trainStreamOrder(big, traces);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const after = process.memoryUsage().heapUsed;
    const stored = big.chunks.reduce((a, c) => a + c.storedSizeBytes, 0);
    log(`Training ${traces.length} traces (${r.stats.records} reads) on a ${copies === 1 ? '' : `${copies}× `}manifest of ${big.chunks.length} chunks (${mb(stored)} build): ${ms.toFixed(0)} ms, heap growth ${mb(after - before)} (process RSS ${mb(process.memoryUsage().rss)}).`);
  }
  if (VARIANTS) variants(manifest, train, held, buildBytes);
  if (REAL) await real();
  if (OUT) writeFileSync(OUT, lines.join('\n') + '\n');
}

/** Training options evaluated against the defaults (TrainOptions of the engine). */
const VARIANT_OPTIONS = {
  'defaults': {},
  'no launcher fit (fitLauncher: false)': { fitLauncher: false },
  'fit with stalls weighing as waiting (stallWeight: 1)': { stallWeight: 1 },
  'orderShare 0.1': { orderShare: 0.1 },
  'orderShare 0.5': { orderShare: 0.5 },
  'no neighbour placement (neighbourReach: 0)': { neighbourReach: 0 },
  'firstSessionWeight 1': { firstSessionWeight: 1 },
  'firstSessionWeight 4': { firstSessionWeight: 4 },
  'profileMinShare 0': { profileMinShare: 0 },
  'profileMinShare 0.5': { profileMinShare: 0.5 },
};

function variants(manifest, train, held, buildBytes) {
  log();
  log('| traces | training options | 25 Mbit/s: launcher wait (preload) | 100 Mbit/s | 1000 Mbit/s |');
  log('|---|---|---|---|---|');
  for (const n of [12, 32].filter((k) => k <= train.length)) {
    for (const [name, o] of Object.entries(VARIANT_OPTIONS)) {
      const e = evaluate(manifest, train.slice(0, n), held, o);
      const cell = (mbit) => `${sec(e.perBandwidth[mbit].launcher)} (${((100 * e.perBandwidth[mbit].preload) / buildBytes).toFixed(1)} %)`;
      log(`| ${n} | ${name} | ${cell(25)} | ${cell(100)} | ${cell(1000)} |`);
    }
  }
}

/** Python scripts: each imports and runs a different real package; three runs each with other inputs. */
const PY_PROGRAMS = [
  ['numpy', (k) => `import numpy as np; print(np.linalg.svd(np.random.rand(${100 + 50 * k}, 80))[1][0])`],
  ['scipy', (k) => `import scipy.optimize as o, scipy.sparse.linalg; print(o.minimize(lambda x: (x[0]-${k})**2, [0.0]).x)`],
  ['sympy', (k) => `import sympy as s; x = s.Symbol('x'); print(s.integrate(s.sin(x)**${k + 2}, x))`],
  ['networkx', (k) => `import networkx as nx; print(nx.shortest_path(nx.path_graph(${30 + k * 10}), 0, ${20 + k}))`],
  ['botocore', (k) => `import botocore.session; print(len(botocore.session.get_session().get_service_model(${JSON.stringify(['s3', 'ec2', 'dynamodb'][k])}).operation_names))`],
  ['pygments', (k) => `import pygments.lexers, pygments.formatters, pygments; print(len(pygments.highlight('x = ${k}', pygments.lexers.get_lexer_by_name(${JSON.stringify(['python', 'c', 'rust'][k])}), pygments.formatters.HtmlFormatter())))`],
  ['jedi', (k) => `import jedi; print(len(jedi.Script(${JSON.stringify(['import os\nos.pa', 'import json\njson.lo', 'import re\nre.co'][k])}).complete()))`],
];

async function realPython() {
  // A real program reading a data folder: the Python installation (interpreter, standard library and
  // site-packages) as the "game"; a session runs one script that imports a package and uses it.
  const prefix = spawnSync('python3', ['-c', 'import sys; print(sys.prefix)'], { encoding: 'utf8' }).stdout.trim();
  const work = join(DATA, 'real-python');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'traces'), { recursive: true });
  const cli = join(ROOT, 'packages/cli/dist/bin.js');
  const names = [];
  for (let k = 0; k < 3; k++) {
    for (const [name, script] of PY_PROGRAMS) {
      const file = `${k}-${name}.rtrace`;
      const r = spawnSync(process.execPath, [cli, 'trace', 'record', '--root', prefix, '--out', join(work, 'traces', file), '--session', `${name}-${k}`, '--',
        join(prefix, 'bin/python3'), '-B', '-c', script(k)], { stdio: 'ignore' });
      if (r.status !== 0) throw new Error(`recording ${name} ${k} failed (${r.status})`);
      names.push(file);
    }
  }
  await buildImage({ input: prefix, outDir: join(work, 'image') });
  const source = openImageSource(join(work, 'image'));
  const { manifest } = await openImage(source);
  await source.close();
  const read = (n) => parseAnyTrace(readFileSync(join(work, 'traces', n)));
  // Runs 0 and 1 of every script train (14 traces), run 2 is held out (7).
  const train = names.filter((n) => !n.startsWith('2-')).map(read);
  const held = names.filter((n) => n.startsWith('2-')).map(read);
  return { manifest, train, held, sizes: [...train, ...held].map((t) => t.records.length), prefix };
}

function realTable(e) {
  log('| Mbit/s | preload | launcher wait | stream-only wait | oracle | full download | sessions on target |');
  log('|---|---|---|---|---|---|---|');
  for (const mbit of MBITS) {
    const b = e.perBandwidth[mbit];
    log(`| ${mbit} | ${mb(b.preload)} | ${sec(b.launcher)} | ${sec(b.stream)} | ${sec(b.oracle)} | ${sec(b.full)} | ${b.ok}/${b.n} |`);
  }
}

async function real() {
  {
    log();
    const r = await realProgram();
    const e = evaluate(r.manifest, r.train, r.held);
    const bytes = r.manifest.chunks.reduce((a, c) => a + c.storedSizeBytes, 0);
    log(`Real program: \`tsc --noEmit\` (node_modules/typescript, ${mb(bytes)} stored, ${r.manifest.chunks.length} chunks) recorded with \`rockit trace record\`, 10 sessions (different --target/--lib; ${r.sizes.join(', ')} reads), 7 trained, 3 held out:`);
    log();
    realTable(e);
  }
  {
    log();
    const r = await realPython();
    const e = evaluate(r.manifest, r.train, r.held);
    const bytes = r.manifest.chunks.reduce((a, c) => a + c.storedSizeBytes, 0);
    log(`Real program: Python scripts (${PY_PROGRAMS.map((p) => p[0]).join(', ')}) under \`rockit trace record\`, root = the Python installation ${r.prefix} (${mb(bytes)} stored, ${r.manifest.chunks.length} chunks); 3 runs of each script with other inputs (${r.sizes.join(', ')} reads); runs 0 and 1 trained (14), run 2 held out (7):`);
    log();
    realTable(e);
  }
  if (REAL_ONLY && OUT) writeFileSync(OUT, lines.join('\n') + '\n');
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exitCode = 1;
});
