// Extract against `tar -x` of the same build, in the same run: time, speed ratio and peak RSS per build size.
// Usage (after `npx tsc -b`):
//   node bench/engine/extract-bench.mjs --sizes 1e9,4e9 --runs 3 [--compare <engine dist folder>] [--cpu-prof]
// For each size: a gamegen build (tar) is generated once and imported once (cached under --work); then each run
// extracts it with our engine (child process), with `tar -x` (under /usr/bin/time) and, with --compare, with
// another build of the engine (a copy of its dist/ folder, e.g. main's) — interleaved, after a `sync`, each into
// a fresh folder. Ours and the compared engine are timed as whole child processes (Node start included).
// --cpu-prof: one more extract with `node --cpu-prof`, summarised per thread (self time by function).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { rm, runOp, sizeOf } from './bench-lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const opt = { sizes: '1e9,4e9', runs: '3', work: '.bench-data/extract', seed: '7', compare: '', cpuProf: false, threads: '' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--cpu-prof') opt.cpuProf = true;
  else if (a === '--compare' && (argv[i + 1] === undefined || argv[i + 1].startsWith('--'))) opt.compare = '.bench-data/engine-main';
  else if (a.startsWith('--')) opt[a.slice(2)] = argv[++i];
}
const work = resolve(opt.work);
mkdirSync(work, { recursive: true });
const log = (s) => process.stderr.write(`[extract-bench] ${s}\n`);
const say = (s = '') => process.stdout.write(s + '\n');
const fmtMB = (b) => `${(b / 1e6).toFixed(0)} MB`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function sync() {
  spawnSync('sync');
}

/** Our extract (or another engine's) in a child process: wall seconds of the child, op seconds, maxRSS. */
function extractChild(image, outDir, engine, nodeArgs = []) {
  const args = { image, outDir, ...(engine ? { engine: resolve(engine) } : {}), ...(opt.threads ? { threads: Number(opt.threads) } : {}) };
  const t = performance.now();
  const r = spawnSync(process.execPath, [...nodeArgs, join(here, 'run-op.mjs'), 'extract', JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'], cwd: work });
  const wall = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`extract failed: ${r.stderr.toString().slice(-2000)}`);
  const lines = r.stdout.toString().trim().split('\n');
  const out = JSON.parse(lines[lines.length - 1]);
  return { wall, seconds: out.seconds, rss: out.maxRssBytes };
}

/** tar -x under /usr/bin/time: wall seconds and maxRSS. */
function tarChild(tar, outDir) {
  mkdirSync(outDir, { recursive: true });
  const t = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', 'tar', '-xf', tar, '-C', outDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  const wall = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`tar -x failed: ${r.stderr.toString()}`);
  const kb = Number(r.stderr.toString().trim().split('\n').pop());
  return { wall, rss: kb * 1024 };
}

/** Self time per function of one .cpuprofile, top `n`. */
function summariseProfile(file, n = 12) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const dt = (p.endTime - p.startTime) / 1000 / Math.max(1, p.samples.length); // ms per sample
  const self = new Map();
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const hits = new Map();
  for (const s of p.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  for (const [id, h] of hits) {
    const node = byId.get(id);
    const cf = node.callFrame;
    const where = cf.url ? `${cf.url.replace(/^.*\/(packages|node_modules)\//, '$1/')}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + h * dt);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
  return { total, top };
}

/** The median row of one size (and the largest maxRSS of each tool). */
function summaryRow(bytes, rows) {
  const mo = median(rows.ours.map((r) => r.wall));
  const mt = median(rows.tar.map((r) => r.wall));
  const cm = opt.compare ? median(rows.cmp.map((r) => r.wall)) : 0;
  say(`| ${fmtMB(bytes)} | median | ${mo.toFixed(2)} | ${mt.toFixed(2)} | **${(mt / mo).toFixed(2)}×** | ${fmtMB(Math.max(...rows.ours.map((r) => r.rss)))} (max) | ${fmtMB(Math.max(...rows.tar.map((r) => r.rss)))} (max) |` + (opt.compare ? ` ${cm.toFixed(2)} | ${fmtMB(Math.max(...rows.cmp.map((r) => r.rss)))} (max) | **${(cm / mo).toFixed(2)}×** |` : ''));
}

say(`Machine: ${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; ${new Date().toISOString()}`);
say(`Command: node bench/engine/extract-bench.mjs ${argv.join(' ')}`);
say();
say('| build (tar) | run | ours s (op s) | tar -x s | ratio ours/tar | ours maxRSS | tar maxRSS |' + (opt.compare ? ' compared s | compared maxRSS | ours vs compared |' : ''));
say('|---|---|---|---|---|---|---|' + (opt.compare ? '---|---|---|' : ''));
const profiles = [];
for (const size of opt.sizes.split(',').map(Number)) {
  const dir = join(work, `g${size}`);
  const tar = join(dir, 'v1.tar');
  if (!existsSync(tar)) {
    log(`gamegen ${fmtMB(size)}`);
    runOp('gamegen', { seed: Number(opt.seed), sizeBytes: size, versions: 1, outDir: dir, tar: true });
    rm(join(dir, 'v1')); // only the tar is needed
  }
  const image = join(dir, 'img');
  if (!existsSync(join(image, 'image.json'))) {
    log(`import ${fmtMB(size)}`);
    rm(image);
    runOp('import', { input: tar, outDir: image });
  }
  const bytes = sizeOf(tar);
  const rows = { ours: [], tar: [], cmp: [] };
  for (let run = 1; run <= Number(opt.runs); run++) {
    for (const which of ['ours', 'tar', ...(opt.compare ? ['cmp'] : [])]) {
      const out = join(dir, `out-${which}`);
      rm(out);
      rm(out + '.rockit-staging');
      rm(out + '.rockit-state.json');
      sync();
      const r = which === 'tar' ? tarChild(tar, out) : extractChild(image, out, which === 'cmp' ? opt.compare : undefined);
      rows[which].push(r);
      log(`${fmtMB(bytes)} run ${run} ${which}: ${r.wall.toFixed(2)} s, maxRSS ${fmtMB(r.rss)}`);
      rm(out);
    }
    const o = rows.ours[run - 1];
    const t = rows.tar[run - 1];
    const c = rows.cmp[run - 1];
    say(`| ${fmtMB(bytes)} | ${run} | ${o.wall.toFixed(2)} (${o.seconds.toFixed(2)}) | ${t.wall.toFixed(2)} | ${(t.wall / o.wall).toFixed(2)}× | ${fmtMB(o.rss)} | ${fmtMB(t.rss)} |` + (c ? ` ${c.wall.toFixed(2)} | ${fmtMB(c.rss)} | ${(c.wall / o.wall).toFixed(2)}× |` : ''));
  }
  if (rows.ours.length > 0) summaryRow(bytes, rows);
  if (opt.cpuProf) {
    const profDir = join(dir, 'cpu-prof');
    rm(profDir);
    const out = join(dir, 'out-prof');
    rm(out);
    sync();
    extractChild(image, out, undefined, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
    rm(out);
    profiles.push({ bytes, files: readdirSync(profDir).map((f) => join(profDir, f)) });
  }
}
say();
say('ratio = tar -x time / our time (> 1: faster than tar); ours verifies every chunk against its id.');
for (const { bytes, files } of profiles) {
  say();
  say(`### Where the time goes (${fmtMB(bytes)}, --cpu-prof, self time per thread)`);
  for (const f of files) {
    const { total, top } = summariseProfile(f);
    say();
    say(`${f.split('/').pop()}: ${(total / 1000).toFixed(2)} s sampled`);
    for (const [k, ms] of top) say(`- ${(ms / 1000).toFixed(2)} s  ${k}`);
  }
}
