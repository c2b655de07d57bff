// Patch make/apply of one real pair of tars against zstd --patch-from, measured in the same invocation.
// Usage (after `npx tsc -b`):
//   node bench/engine/patch-pair.mjs --from old.tar --to new.tar [--work .bench-data/pair] [--skip-zstd19]
//     [--reuse] [--runs N] [--engine DIR]
// --reuse keeps the work folder of an earlier run: A's extracted folder, the engine patch and zstd's patch are
// made only when missing (repeated apply measurements skip the costly make steps). --skip-zstd19 skips making
// zstd's patch, but `zstd -d` still runs when a reused zstd.patch is there. --runs N repeats the apply steps N
// times, alternating engine apply and `zstd -d` (and the --engine baseline's apply, if given: DIR holds another
// build's dist, e.g. a copy of packages/engine/dist made before a change), so load changes hit all of them alike.
// Example pair: `apt-get download linux-image-6.1.0-56-amd64 linux-image-6.1.0-57-amd64`, then
// `dpkg-deb --fsys-tarfile x.deb > x.tar` for each. Each engine step runs in its own process (run-op.mjs):
// wall seconds, CPU seconds (user + system of the child) and peak RSS are printed as one markdown table.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import process from 'node:process';

const { values: opt } = parseArgs({
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
    work: { type: 'string', default: '.bench-data/pair' },
    'skip-zstd19': { type: 'boolean', default: false },
    reuse: { type: 'boolean', default: false },
    runs: { type: 'string', default: '1' },
    engine: { type: 'string' },
  },
});
if (!opt.from || !opt.to) throw new Error('--from and --to (tar files) are required');
const work = resolve(opt.work);
if (!opt.reuse) rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const runOp = fileURLToPath(import.meta.resolve('./run-op.mjs'));

/** Runs a command under /usr/bin/time: wall, CPU seconds and peak RSS (bytes). */
function timed(cmd, args) {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const m = /TIME (\S+) (\S+) (\S+) (\S+)/.exec(r.stderr);
  return { wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), rss: Number(m[4]) * 1024, stdout: r.stdout };
}

const fromDir = join(work, 'from');
if (!existsSync(fromDir)) {
  mkdirSync(fromDir);
  execFileSync('tar', ['-xf', resolve(opt.from), '-C', fromDir]);
}
const rows = [];
const patchDir = join(work, 'patch');
if (!opt.reuse || !existsSync(join(patchDir, 'patch.json'))) {
  rmSync(patchDir, { recursive: true, force: true });
  const make = timed('node', [runOp, 'make-patch', JSON.stringify({ from: resolve(opt.from), to: resolve(opt.to), outDir: patchDir })]);
  const patchBytes = JSON.parse(make.stdout.trim().split('\n').pop()).result.stats.patchBytes;
  rows.push(['engine make', make, patchBytes]);
}
const zpatch = join(work, 'zstd.patch');
if (!opt['skip-zstd19'] && !(opt.reuse && existsSync(zpatch))) {
  const z = timed('zstd', ['-q', '-19', '--long=31', '-T0', `--patch-from=${resolve(opt.from)}`, resolve(opt.to), '-o', zpatch, '-f']);
  rows.push(['zstd -19 --long=31 -T0 --patch-from', z, statSync(zpatch).size]);
}
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
/** Engine apply into a fresh folder (the folder is removed first and after: each run writes the whole tree). */
function applyWith(engine) {
  const to = join(work, 'to');
  rmSync(to, { recursive: true, force: true });
  const args = { patch: patchDir, fromDir, outDir: to, ...(engine ? { engine: resolve(engine) } : {}) };
  const t = timed('node', [runOp, 'apply-patch', JSON.stringify(args)]);
  rmSync(to, { recursive: true, force: true });
  return t;
}
for (let r = 0; r < Number(opt.runs); r++) {
  if (opt.engine) rows.push([`engine apply (baseline ${opt.engine}) [load ${load()}]`, applyWith(opt.engine), '']);
  rows.push([`engine apply [load ${load()}]`, applyWith(undefined), '']);
  if (existsSync(zpatch)) {
    const zout = join(work, 'zstd.out');
    const zd = timed('zstd', ['-q', '-d', '--long=31', `--patch-from=${resolve(opt.from)}`, zpatch, '-o', zout, '-f']);
    rmSync(zout, { force: true });
    rows.push([`zstd -d --patch-from [load ${load()}]`, zd, '']);
  }
}
const out = (s) => process.stdout.write(s + '\n');
out(`${new Date().toISOString()} ${opt.from} -> ${opt.to}\n`);
out('| step | wall s | CPU s | peak RSS MB | patch bytes |\n|---|---:|---:|---:|---:|');
for (const [name, t, size] of rows) out(`| ${name} | ${t.wall.toFixed(1)} | ${t.cpu.toFixed(1)} | ${(t.rss / 1e6).toFixed(0)} | ${size} |`);
