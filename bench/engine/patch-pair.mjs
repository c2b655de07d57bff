// Patch make/apply of one real pair of tars against zstd --patch-from, measured in the same invocation.
// Usage (after `npx tsc -b`):
//   node bench/engine/patch-pair.mjs --from old.tar --to new.tar [--work .bench-data/pair] [--skip-zstd19]
// Example pair: `apt-get download linux-image-6.1.0-56-amd64 linux-image-6.1.0-57-amd64`, then
// `dpkg-deb --fsys-tarfile x.deb > x.tar` for each. Each engine step runs in its own process (run-op.mjs):
// wall seconds, CPU seconds (user + system of the child) and peak RSS are printed as one markdown table.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
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
  },
});
if (!opt.from || !opt.to) throw new Error('--from and --to (tar files) are required');
const work = resolve(opt.work);
rmSync(work, { recursive: true, force: true });
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
mkdirSync(fromDir);
execFileSync('tar', ['-xf', resolve(opt.from), '-C', fromDir]);
const rows = [];
const patchDir = join(work, 'patch');
const make = timed('node', [runOp, 'make-patch', JSON.stringify({ from: resolve(opt.from), to: resolve(opt.to), outDir: patchDir })]);
const patchBytes = JSON.parse(make.stdout.trim().split('\n').pop()).result.stats.patchBytes;
rows.push(['engine make', make, patchBytes]);
const apply = timed('node', [runOp, 'apply-patch', JSON.stringify({ patch: patchDir, fromDir, outDir: join(work, 'to') })]);
rows.push(['engine apply', apply, '']);
const zpatch = join(work, 'zstd.patch');
if (!opt['skip-zstd19']) {
  const z = timed('zstd', ['-q', '-19', '--long=31', '-T0', `--patch-from=${resolve(opt.from)}`, resolve(opt.to), '-o', zpatch, '-f']);
  rows.push(['zstd -19 --long=31 -T0 --patch-from', z, statSync(zpatch).size]);
  const zd = timed('zstd', ['-q', '-d', '--long=31', `--patch-from=${resolve(opt.from)}`, zpatch, '-o', join(work, 'zstd.out'), '-f']);
  rows.push(['zstd -d --patch-from', zd, '']);
}
const out = (s) => process.stdout.write(s + '\n');
out(`${new Date().toISOString()} ${opt.from} -> ${opt.to}\n`);
out('| step | wall s | CPU s | peak RSS MB | patch bytes |\n|---|---:|---:|---:|---:|');
for (const [name, t, size] of rows) out(`| ${name} | ${t.wall.toFixed(1)} | ${t.cpu.toFixed(1)} | ${(t.rss / 1e6).toFixed(0)} | ${size} |`);
