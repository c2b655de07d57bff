// `rockit image build|extract|verify`: local engine commands. Human-readable output by default, one JSON
// object on stdout with --json. Failures print one line on stderr (via bin.ts) and exit non-zero; verify exits
// 1 when the image is damaged.
import type { Command } from 'commander';
import { buildImage, extractImage, preloadBytes, verifyImage } from '@rockit/engine';
import { mbitKey, mbitToBytesPerSecond, readImageManifest, REPORT_BANDWIDTHS_MBIT } from '../faststart/image-manifest.js';
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

  image
    .command('inspect')
    .description("an image's stream layout: every chunk in stream order with the file ranges it holds, and the load profile")
    .argument('<source>', 'image folder or base URL')
    .option('--json', 'print the layout as JSON')
    .action(async (source: string, opts: JsonFlag) => {
      const { manifest: m, manifestName } = await readImageManifest(source);
      const ranges: Array<Array<{ path: string; offset: number; length: number }>> = m.chunks.map(() => []);
      const byPath = new Map(m.files.map((f) => [f.path, f]));
      for (const f of m.files) {
        const target = f.type === 'hardlink' ? byPath.get(f.linkTarget) : f;
        if (!target || target.type !== 'file') continue;
        let off = 0;
        for (const ci of target.chunks) {
          ranges[ci].push({ path: f.path, offset: off, length: m.chunks[ci].rawSizeBytes });
          off += m.chunks[ci].rawSizeBytes;
        }
      }
      const stream = m.chunks.map((c, i) => ({ storedBytes: c.storedSizeBytes, rawBytes: c.rawSizeBytes, ranges: ranges[i] }));
      const streamBytes = stream.reduce((a, c) => a + c.storedBytes, 0);
      const rawBytes = stream.reduce((a, c) => a + c.rawBytes, 0);
      const p = m.profile;
      const profile = p
        ? { points: p.points, margins: p.margins ?? [], preloadBytes: Object.fromEntries(REPORT_BANDWIDTHS_MBIT.map((mb) => [mbitKey(mb), preloadBytes(p, mbitToBytesPerSecond(mb))])) }
        : null;
      const files = m.files.filter((f) => f.type === 'file').length;
      print(opts.json, { manifestName, files, chunks: m.chunks.length, streamBytes, rawBytes, stream, profile }, [
        `manifest       ${manifestName}`,
        `files          ${files}`,
        `chunks         ${m.chunks.length} (${formatBytes(streamBytes)} stored, ${formatBytes(rawBytes)} raw)`,
        ...stream.slice(0, 10).map((c, i) => `  #${i} ${formatBytes(c.storedBytes)}: ${c.ranges.map((r) => `${r.path}@${r.offset}+${r.length}`).join(', ')}`),
        ...(stream.length > 10 ? [`  … ${stream.length - 10} more (use --json)`] : []),
        profile
          ? `profile        ${p!.points.length} points; preload ${REPORT_BANDWIDTHS_MBIT.map((mb) => `${mb} Mbit/s ${formatBytes(profile.preloadBytes[mbitKey(mb)])}`).join(', ')}`
          : 'profile        none (untrained image)',
      ]);
    });
}
