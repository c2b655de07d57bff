import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { generateSeries, generateSessions } from '@rockit/gamegen';
import { createProgress } from '../progress.js';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/**
 * Parses a size: a number with an optional unit, case-insensitive. KB/MB/GB/TB are decimal (10^3...),
 * KiB/MiB/GiB/TiB and the bare K/M/G are binary (2^10...). Throws InvalidArgumentError otherwise.
 */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InvalidArgumentError(`not a size: ${text} (e.g. 300MB, 1GB, 4GiB)`);
  const n = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`size out of range: ${text}`);
  return n;
}

function parseInteger(text: string): number {
  if (!/^-?\d+$/.test(text.trim())) throw new InvalidArgumentError(`not an integer: ${text}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`integer out of range: ${text}`);
  return n;
}

function parsePositive(text: string): number {
  const n = parseInteger(text);
  if (n < 1) throw new InvalidArgumentError(`must be ≥ 1: ${text}`);
  return n;
}

/** Registers `rockit gamegen build` and `rockit gamegen sessions` (deterministic test data). */
export function register(program: Command): void {
  const gamegen = program.command('gamegen').description('generate deterministic test data: game build series and play sessions');

  gamegen
    .command('build')
    .description('write a series of game builds v1..vN (folders, optional tars) and series.json')
    .requiredOption('--out <dir>', 'output folder')
    .option('--seed <n>', 'seed (same seed, same bytes)', parseInteger, 1)
    .option('--size <size>', 'approximate size of v1 (300MB, 1GB, 4GiB)', parseSize, 300e6)
    .option('--versions <n>', 'number of versions', parsePositive, 4)
    .option('--tar', 'also write vK.tar for each version')
    .option('--json', 'print series.json to stdout, no progress bar')
    .action(async (o: { out: string; seed: number; size: number; versions: number; tar?: boolean; json?: boolean }) => {
      let current = 0;
      let bar = createProgress({ label: 'v1', json: o.json });
      const description = await generateSeries({
        seed: o.seed,
        sizeBytes: o.size,
        versions: o.versions,
        outDir: o.out,
        tar: o.tar,
        onProgress: (p) => {
          const key = p.version * 2 + (p.phase === 'tar' ? 1 : 0);
          if (key !== current) {
            if (current !== 0) bar.done();
            current = key;
            bar = createProgress({ label: `v${p.version}${p.phase === 'tar' ? ' tar' : ''}`, json: o.json, total: p.totalBytes });
          }
          bar.update(p.doneBytes, p.totalBytes);
        },
      });
      bar.done();
      if (o.json) process.stdout.write(JSON.stringify(description) + '\n');
      else {
        for (const v of description.versions) {
          process.stdout.write(`${o.out}/${v.dir}: ${v.files} files, ${v.sizeBytes} bytes${v.tar ? `, ${v.tar}` : ''}\n`);
        }
      }
    });

  gamegen
    .command('sessions')
    .description('write play-session traces over a build folder, and sessions.json')
    .requiredOption('--build <dir>', 'build folder (e.g. <out>/v1 of gamegen build)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--count <n>', 'number of sessions', parsePositive, 50)
    .option('--seed <n>', 'seed (same seed and build, same traces)', parseInteger, 1)
    .option('--json', 'print sessions.json to stdout, no progress bar')
    .action(async (o: { build: string; out: string; count: number; seed: number; json?: boolean }) => {
      const bar = createProgress({ label: 'sessions', json: o.json, total: o.count, unit: 'items' });
      const description = await generateSessions({
        buildDir: o.build,
        count: o.count,
        seed: o.seed,
        outDir: o.out,
        onProgress: (done, total) => bar.update(done, total),
      });
      bar.done();
      if (o.json) process.stdout.write(JSON.stringify(description) + '\n');
      else {
        const records = description.sessions.reduce((s, x) => s + x.records, 0);
        const first = description.sessions.filter((x) => x.firstSession).length;
        process.stdout.write(`${description.sessions.length} sessions (${first} first sessions, ${records} reads) in ${o.out}\n`);
      }
    });
}
