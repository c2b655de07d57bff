// Engine benchmarks (spec/engine.md §5): every figure next to a reference measured in the same run
// on the same input, as a ratio. Prints markdown tables; see README.md. Build first: npx tsc -b.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import process from 'node:process';
import { fixedChunkStorePatch, fmtMB, fmtRate, fmtS, ratio, rm, runOp, sizeOf, timed } from './bench-lib.mjs';

const { values: opt } = parseArgs({
  options: {
    work: { type: 'string', default: '.bench-data/engine' },
    size: { type: 'string', default: '500000000' },
    versions: { type: 'string', default: '4' },
    seed: { type: 'string', default: '1' },
    'zstd19-pairs': { type: 'string', default: '1' },
    'xdelta-pairs': { type: 'string', default: '99' },
    // Pairs separated by ';'. An npm spec (`name@version`), or a Debian package `deb:<name>[=<version>]` fetched with
    // `apt-get download` (its data tar, as dpkg-deb gives it), or `deb:linux-image` for the two newest
    // linux-image-*-amd64 kernels the configured Debian mirror offers.
    real: { type: 'string', default: 'deb:linux-image;@biomejs/cli-linux-x64@2.6.7,@biomejs/cli-linux-x64@2.6.8;typescript@5.9.2,typescript@5.9.3' },
    'rss-sizes': { type: 'string', default: '1000000000,4000000000' },
    skip: { type: 'string', default: '' },
    /** What makePatch reads, in order of preference: image, tar, folder. */
    'patch-input': { type: 'string', default: 'folder' },
    out: { type: 'string' },
  },
});
const skip = new Set(opt.skip.split(',').filter(Boolean));
const work = resolve(opt.work);
mkdirSync(work, { recursive: true });
const lines = [];
let patchInputKinds = opt['patch-input'].split(',');
let patchInputUsed = '';
const say = (s = '') => {
  lines.push(s);
  process.stdout.write(s + '\n');
};
const log = (s) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);

/**
 * One data set: versions with a folder and a tar each. Measures import, patches for consecutive
 * pairs, apply and extract, each against its references; appends markdown tables.
 */
function benchSet(title, versions) {
  const img = (v) => join(work, 'img', v.label);
  rm(join(work, 'img'));
  mkdirSync(join(work, 'img'), { recursive: true });
  const tmp = join(work, 'tmp');
  rm(tmp);
  mkdirSync(tmp, { recursive: true });
  const rows = [];
  const row = (metric, ours, ref, r, note = '') => rows.push(`| ${metric} | ${ours} | ${ref} | ${r} | ${note} |`);

  // Import: tar → image, against zstd -3 -T0 of the same tar (to a file, like the image).
  let ourS = 0, refS = 0, rawBytes = 0, imgBytes = 0, zstBytes = 0, importRss = 0;
  for (const v of versions) {
    log(`${title}: import ${v.label}`);
    const r = runOp('import', { input: v.tar, outDir: img(v) });
    ourS += r.seconds;
    importRss = Math.max(importRss, r.maxRssBytes);
    rawBytes += sizeOf(v.tar);
    imgBytes += sizeOf(img(v));
    const z = join(tmp, 'ref.zst');
    refS += timed('zstd', ['-3', '-T0', '-q', '-f', v.tar, '-o', z]);
    zstBytes += sizeOf(z);
    rm(z);
  }
  row(`import throughput (${versions.length} tars, ${fmtMB(rawBytes)})`, fmtRate(rawBytes, ourS), `zstd -3 -T0: ${fmtRate(rawBytes, refS)}`, ratio(refS, ourS), 'ratio = our speed / reference speed');
  row('stored size after import', fmtMB(imgBytes), `zstd -3 -T0: ${fmtMB(zstBytes)}`, ratio(imgBytes, zstBytes), 'image = independently compressed chunks + manifest');

  // Patches between consecutive versions.
  const sums = { ours: 0, zstd: 0, zstdOurs: 0, xd: 0, xdOurs: 0, store: 0, storeOurs: 0 };
  const times = { make: 0, apply: 0, zMake: 0, zApply: 0, zOursMake: 0, zOursApply: 0, xMake: 0, xApply: 0, xOursMake: 0, xOursApply: 0 };
  let patchRss = 0, applyRss = 0, baseManifestBytes = 0;
  const pairRows = [];
  for (let i = 0; i + 1 < versions.length; i++) {
    const a = versions[i], b = versions[i + 1];
    log(`${title}: patch ${a.label} → ${b.label}`);
    const pdir = join(tmp, 'patch');
    // Patches are made from the first input kind of --patch-input the engine accepts.
    let mk;
    for (const kind of patchInputKinds) {
      try {
        const pick = (v) => (kind === 'image' ? img(v) : kind === 'tar' ? v.tar : v.dir);
        mk = runOp('make-patch', { from: pick(a), to: pick(b), outDir: pdir });
        patchInputUsed = kind;
        break;
      } catch (err) {
        log(`make-patch from ${kind} failed: ${String(err.message).split('\n').find((l) => /Error/.test(l)) ?? ''}`);
        rm(pdir);
        patchInputKinds = patchInputKinds.filter((k) => k !== kind);
      }
    }
    if (!mk) throw new Error('make-patch failed for every input kind');
    // What a launcher holding A's manifest downloads: the pointer, the manifest delta and the data part
    // (the base-manifest part is only fetched by callers without A's manifest; reported apart).
    const pointer = JSON.parse(readFileSync(join(pdir, 'patch.json'), 'utf8'));
    const ours = sizeOf(join(pdir, 'patch.json')) + pointer.parts.filter((p) => p.role !== 'baseManifest').reduce((s, p) => s + p.sizeBytes, 0);
    baseManifestBytes += pointer.stats.baseManifestBytes;
    const out = join(tmp, 'applied');
    const ap = runOp('apply-patch', { patch: pdir, fromDir: a.dir, outDir: out });
    if (sizeOf(out) !== sizeOf(b.dir)) throw new Error(`applied ${b.label} differs in size from the original`);
    rm(out);
    rm(pdir);
    patchRss = Math.max(patchRss, mk.maxRssBytes);
    applyRss = Math.max(applyRss, ap.maxRssBytes);
    sums.ours += ours;
    times.make += mk.seconds;
    times.apply += ap.seconds;
    const cells = { pair: `${a.label} → ${b.label}`, ours, zstd: '—', xd: '—', store: '—' };

    const st = fixedChunkStorePatch(a.dir, b.dir);
    sums.store += st.bytes;
    sums.storeOurs += ours;
    cells.store = st.bytes;

    if (i < Number(opt['xdelta-pairs'])) {
      const xp = join(tmp, 'x.vcdiff');
      const xo = join(tmp, 'x.out');
      times.xMake += timed('xdelta3', ['-9', '-f', '-e', '-s', a.tar, b.tar, xp]);
      times.xApply += timed('xdelta3', ['-d', '-f', '-s', a.tar, xp, xo]);
      sums.xd += sizeOf(xp);
      sums.xdOurs += ours;
      times.xOursMake += mk.seconds;
      times.xOursApply += ap.seconds;
      cells.xd = sizeOf(xp);
      rm(xp);
      rm(xo);
    }
    if (i < Number(opt['zstd19-pairs'])) {
      const zp = join(tmp, 'z.zst');
      const zo = join(tmp, 'z.out');
      times.zMake += timed('zstd', ['-19', '--long=31', '-T0', '-q', '-f', `--patch-from=${a.tar}`, b.tar, '-o', zp]);
      times.zApply += timed('zstd', ['-d', '--long=31', '-q', '-f', `--patch-from=${a.tar}`, zp, '-o', zo]);
      sums.zstd += sizeOf(zp);
      sums.zstdOurs += ours;
      times.zOursMake += mk.seconds;
      times.zOursApply += ap.seconds;
      cells.zstd = sizeOf(zp);
      rm(zp);
      rm(zo);
    }
    pairRows.push(cells);
  }
  if (versions.length > 1) {
    row('patch inputs', patchInputUsed, '', '', 'what makePatch read: image folders, tars or plain folders');
    if (sums.zstd) row('patch size', fmtMB(sums.zstdOurs), `zstd -19 --long=31 --patch-from: ${fmtMB(sums.zstd)}`, ratio(sums.zstdOurs, sums.zstd), 'lower is better');
    if (sums.xd) row('patch size', fmtMB(sums.xdOurs), `xdelta3 -9: ${fmtMB(sums.xd)}`, ratio(sums.xdOurs, sums.xd), 'lower is better');
    row('base-manifest part (not in patch size)', fmtMB(baseManifestBytes), '', '', 'fetched only by a caller without A\'s manifest');
    row('patch size', fmtMB(sums.storeOurs), `fixed 1 MiB chunk store (zstd -3 per block): ${fmtMB(sums.store)}`, ratio(sums.storeOurs, sums.store), 'lower is better');
    if (sums.zstd) row('patch make time', fmtS(times.zOursMake), `zstd -19 --long=31: ${fmtS(times.zMake)}`, ratio(times.zOursMake, times.zMake), 'lower is better');
    if (sums.xd) row('patch make time', fmtS(times.xOursMake), `xdelta3 -9: ${fmtS(times.xMake)}`, ratio(times.xOursMake, times.xMake), 'lower is better');
    if (sums.zstd) row('patch apply time', fmtS(times.zOursApply), `zstd -d --patch-from: ${fmtS(times.zApply)}`, ratio(times.zOursApply, times.zApply), 'ours writes and verifies a folder');
    if (sums.xd) row('patch apply time', fmtS(times.xOursApply), `xdelta3 -d: ${fmtS(times.xApply)}`, ratio(times.xOursApply, times.xApply), 'ours writes and verifies a folder');
  }

  // Extract (reconstruct) the last version against tar -x of the same build.
  const last = versions[versions.length - 1];
  log(`${title}: extract ${last.label}`);
  const ex = join(tmp, 'ex');
  const er = runOp('extract', { image: img(last), outDir: ex });
  rm(ex);
  mkdirSync(ex);
  const tx = timed('tar', ['-xf', last.tar, '-C', ex]);
  rm(ex);
  const bytes = sizeOf(last.dir);
  row(`extract ${last.label} (${fmtMB(bytes)})`, fmtRate(bytes, er.seconds), `tar -x: ${fmtRate(bytes, tx)}`, ratio(tx, er.seconds), 'ratio = our speed / tar speed; ours verifies every chunk and file');
  row('peak RSS', `import ${fmtMB(importRss)}, make ${fmtMB(patchRss)}, apply ${fmtMB(applyRss)}, extract ${fmtMB(er.maxRssBytes)}`, '', '', 'child process maxRSS');
  rm(join(work, 'img'));
  rm(tmp);

  say(`### ${title}`);
  say();
  say('| metric | ROCKIT | reference | ratio | note |');
  say('|---|---|---|---|---|');
  rows.forEach((r) => say(r));
  if (pairRows.length) {
    say();
    say('| pair | ROCKIT patch | zstd -19 --long | xdelta3 -9 | 1 MiB store |');
    say('|---|---|---|---|---|');
    for (const p of pairRows) {
      const f = (x) => (typeof x === 'number' ? fmtMB(x) : x);
      say(`| ${p.pair} | ${f(p.ours)} | ${f(p.zstd)} | ${f(p.xd)} | ${f(p.store)} |`);
    }
  }
  say();
}

say(`Machine: ${cpus().length} cores (nproc ${execFileSync('nproc').toString().trim()}), ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`);
say(`Command: node bench/engine/engine-bench.mjs ${process.argv.slice(2).join(' ')}`);
say();

if (!skip.has('series')) {
  const dir = join(work, 'series');
  const size = Number(opt.size);
  const n = Number(opt.versions);
  log(`generating ${n} versions of ${fmtMB(size)}`);
  const g = existsSync(join(dir, 'series.json')) && existsSync(join(dir, `v${n}.tar`)) ? null : runOp('gamegen', { seed: Number(opt.seed), sizeBytes: size, versions: n, outDir: dir, tar: true });
  if (g) log(`gamegen: ${fmtS(g.seconds)}, maxRSS ${fmtMB(g.maxRssBytes)}`);
  const versions = Array.from({ length: n }, (_, i) => ({ label: `v${i + 1}`, dir: join(dir, `v${i + 1}`), tar: join(dir, `v${i + 1}.tar`) }));
  benchSet(`Generated series: ${n} versions of ${fmtMB(size)} (seed ${opt.seed})`, versions);
}

if (!skip.has('real')) {
  for (const group of opt.real.split(';').filter(Boolean)) {
    const specs = group.split(',');
    const dir = join(work, 'real');
    mkdirSync(dir, { recursive: true });
    const versions = expandDebianPair(specs).map((spec) => {
      if (spec.startsWith('deb:')) return debianVersion(spec.slice(4), dir);
      const label = spec.replace(/^@/, '').replace(/[/@]/g, '-');
      const tgz = readdirSync(dir).find((f) => f === `${label}.tgz`);
      if (!tgz) {
        log(`npm pack ${spec}`);
        execFileSync('npm', ['pack', spec, '--pack-destination', dir, '--silent'], { stdio: ['ignore', 'ignore', 'inherit'] });
      }
      const tar = join(dir, `${label}.tar`);
      if (!existsSync(tar)) execFileSync('sh', ['-c', `gzip -dc "${join(dir, label + '.tgz')}" > "${tar}"`]);
      const folder = join(dir, label);
      if (!existsSync(folder)) {
        mkdirSync(folder);
        execFileSync('tar', ['-xf', tar, '-C', folder]);
      }
      return { label, dir: folder, tar };
    });
    benchSet(`Real package: ${specs.join(' → ')}`, versions);
  }
}

/** `deb:linux-image` → the two newest `linux-image-<abi>-amd64` packages of the mirror, older first. */
function expandDebianPair(specs) {
  if (specs.length !== 1 || specs[0] !== 'deb:linux-image') return specs;
  const names = execFileSync('apt-cache', ['search', '--names-only', '^linux-image-[0-9.]+-[0-9]+-amd64$'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (names.length < 2) throw new Error('deb:linux-image: the mirror lists fewer than two linux-image-*-amd64 packages (apt-get update?)');
  return names.slice(-2).map((n) => `deb:${n}`);
}

/** A Debian package as a version of the data set: its data tar (dpkg-deb --fsys-tarfile) and that tar unpacked. */
function debianVersion(spec, dir) {
  const label = 'deb-' + spec.replace(/[^A-Za-z0-9.+-]/g, '_');
  const tar = join(dir, `${label}.tar`);
  if (!existsSync(tar)) {
    const dl = join(dir, `${label}.download`);
    rm(dl);
    mkdirSync(dl, { recursive: true });
    log(`apt-get download ${spec}`);
    execFileSync('apt-get', ['-o', 'APT::Sandbox::User=root', 'download', spec], { cwd: dl, stdio: ['ignore', 'ignore', 'inherit'] });
    const deb = readdirSync(dl).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${spec} left no .deb`);
    execFileSync('sh', ['-c', `dpkg-deb --fsys-tarfile "${join(dl, deb)}" > "${tar}.part" && mv "${tar}.part" "${tar}"`]);
    rm(dl);
  }
  const folder = join(dir, label);
  if (!existsSync(folder)) {
    mkdirSync(folder);
    execFileSync('tar', ['-xf', tar, '-C', folder]);
  }
  return { label, dir: folder, tar };
}

if (!skip.has('rss')) {
  const rows = [];
  for (const size of opt['rss-sizes'].split(',').map(Number)) {
    const dir = join(work, `rss-${size}`);
    log(`rss: generating ${fmtMB(size)}`);
    const g = runOp('gamegen', { seed: 9, sizeBytes: size, versions: 1, outDir: dir, tar: true });
    const tar = join(dir, 'v1.tar');
    const bytes = sizeOf(tar);
    log(`rss: import ${fmtMB(size)}`);
    const im = runOp('import', { input: tar, outDir: join(dir, 'img') });
    const ex = runOp('extract', { image: join(dir, 'img'), outDir: join(dir, 'ex') });
    rows.push(`| ${fmtMB(bytes)} | ${fmtMB(g.maxRssBytes)} | ${fmtMB(im.maxRssBytes)} (${fmtRate(bytes, im.seconds)}) | ${fmtMB(ex.maxRssBytes)} (${fmtRate(bytes, ex.seconds)}) |`);
    rm(dir);
  }
  say('### Peak memory against build size (generated builds, one child process per step)');
  say();
  say('| build (tar) | gamegen maxRSS | import maxRSS (speed) | extract maxRSS (speed) |');
  say('|---|---|---|---|');
  rows.forEach((r) => say(r));
  say();
}

if (opt.out) writeFileSync(opt.out, lines.join('\n') + '\n');
