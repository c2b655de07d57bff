// `rockit image build|extract|verify`: local engine commands. Human-readable output by default, one JSON
// object on stdout with --json. Failures print one line on stderr (via bin.ts) and exit non-zero; verify exits
// 1 when the image is damaged.
import type { Command } from 'commander';
import { buildImage, extractImage, verifyImage } from '@rockit/engine';
import { createProgress, formatBytes } from '../progress.js';

interface JsonFlag {
  json?: boolean;
}

function print(json: boolean | undefined, data: unknown, lines: string[]): void {
  process.stdout.write(json ? JSON.stringify(data) + '\n' : lines.join('\n') + '\n');
}

/** Registers the `rockit image ...` commands. */
export function register(program: Command): void {
  const image = program.command('image').description('build, extract and verify ROCKIT images');

  image
    .command('build')
    .description('turn a game build (tar, tar.gz, tar.zst or a folder) into a ROCKIT image')
    .argument('<input>', 'tar file or folder')
    .requiredOption('--out <dir>', 'output folder (must not exist or be empty)')
    .option('--json', 'print the result as JSON')
    .action(async (input: string, opts: JsonFlag & { out: string }) => {
      const progress = createProgress({ label: 'build', json: opts.json });
      const r = await buildImage({ input, outDir: opts.out, onProgress: (p) => progress.update(p.rawBytes) });
      progress.done();
      const s = r.stats;
      const throughput = s.seconds > 0 ? s.rawBytes / s.seconds : 0;
      print(opts.json, { ...s, manifestName: r.manifestName, throughputBytesPerSecond: Math.round(throughput) }, [
        `files          ${s.files}`,
        `chunks         ${s.chunks} (${s.uniqueChunks} unique)`,
        `dedup ratio    ${s.dedupRatio.toFixed(3)}`,
        `raw bytes      ${formatBytes(s.rawBytes)}`,
        `stored bytes   ${formatBytes(s.storedBytes)} (+ manifest ${formatBytes(s.manifestBytes)})`,
        `throughput     ${formatBytes(throughput)}/s in ${s.seconds.toFixed(2)} s`,
      ]);
    });

  image
    .command('extract')
    .description('write the game folder of an image (local folder or http(s) URL); resumes if interrupted')
    .argument('<source>', 'image folder or base URL')
    .requiredOption('--out <dir>', 'output folder (must not exist or be empty)')
    .option('--json', 'print the result as JSON')
    .action(async (source: string, opts: JsonFlag & { out: string }) => {
      const progress = createProgress({ label: 'extract', json: opts.json });
      const r = await extractImage({ source, outDir: opts.out, onProgress: (p) => progress.update(p.doneBytes, p.totalBytes) });
      progress.done();
      print(opts.json, r, [
        `files          ${r.files}`,
        `bytes          ${formatBytes(r.rawBytes)}`,
        `chunks fetched ${r.chunksFetched}${r.resumed ? ' (resumed)' : ''}`,
        `time           ${r.seconds.toFixed(2)} s`,
      ]);
    });

  image
    .command('verify')
    .description('re-hash every chunk of an image; exit code 1 when anything is damaged')
    .argument('<source>', 'image folder or base URL')
    .option('--json', 'print the report as JSON')
    .action(async (source: string, opts: JsonFlag) => {
      const r = await verifyImage(source);
      const lines = r.ok
        ? [`ok: ${r.chunksChecked} chunks verified`]
        : [
            r.imageError ? `damaged image: ${r.imageError.message}` : `damaged: ${r.damagedChunks.length} chunk(s), ${r.damagedFiles.length} file(s)`,
            ...r.missingPacks.map((p) => `missing pack ${p}`),
            ...r.damagedChunks.map((c) => `chunk ${c.hash} pack ${c.pack} offset ${c.offset}: ${c.reason}`),
            ...r.damagedFiles.map((f) => `file ${f}`),
          ];
      print(opts.json, r, lines);
      if (!r.ok) process.exitCode = 1;
    });
}
