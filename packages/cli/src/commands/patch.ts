// `rockit patch make|apply|recover`: local patch commands. Human-readable output by default, one JSON
// object on stdout with --json. Failures print one line on stderr (via bin.ts) and exit non-zero.
import type { Command } from 'commander';
import { applyPatch, applyPatchInPlace, makePatch, recoverInPlace, type KeptUserEntries } from '@rockit/engine';
import { createProgress, formatBytes } from '../progress.js';

function print(json: boolean | undefined, data: unknown, lines: string[]): void {
  process.stdout.write(json ? JSON.stringify(data) + '\n' : lines.join('\n') + '\n');
}

const seconds = (startedMs: number) => (Date.now() - startedMs) / 1000;

/** Output lines about the player's entries an in-place apply kept: a count, then one line per conflict. */
function keptLines(kept: KeptUserEntries): string[] {
  const count = kept.count === 0 ? [] : [`kept           ${kept.count} file${kept.count === 1 ? '' : 's'} that the build does not list (saves, settings, …)`];
  return [...count, ...kept.conflicts.map((c) => `conflict       ${c.path}: the new build has it too; yours is kept as ${c.keptAs}`)];
}

/** Registers the `rockit patch ...` commands. */
export function register(program: Command): void {
  const patch = program.command('patch').description('make and apply patches between two builds');

  patch
    .command('make')
    .description('compute the patch from an old build to a new one (each an image folder, a tar or a folder)')
    .requiredOption('--from <old>', 'old build: image folder, tar or folder')
    .requiredOption('--to <new>', 'new build: image folder, tar or folder')
    .requiredOption('--out <patchDir>', 'patch folder to create (must not exist or be empty)')
    .option('--level <n>', 'zstd level (default 19)', (v) => Number.parseInt(v, 10))
    .option('--json', 'print the result as JSON')
    .action(async (opts: { from: string; to: string; out: string; level?: number; json?: boolean }) => {
      const started = Date.now();
      const progress = createProgress({ label: 'patch', json: opts.json });
      const r = await makePatch({ from: opts.from, to: opts.to, outDir: opts.out, level: opts.level, onProgress: (p) => progress.update(p.doneBytes, p.totalBytes) });
      progress.done();
      const s = r.stats;
      const secs = seconds(started);
      print(opts.json, { ...s, seconds: secs, from: r.pointer.from.manifestId, to: r.pointer.to.manifestId }, [
        `patch size     ${formatBytes(s.patchBytes)} (${s.patchBytes} bytes; + ${formatBytes(s.baseManifestBytes)} base manifest, fetched only without one)`,
        `chunks         ${s.chunksInTarget} in the new build: ${s.sharedChunks} shared, ${s.newChunks} new (${formatBytes(s.newRawBytes)})`,
        `runs           ${s.runs} (${s.deltaRuns} delta against the old build), ${s.internalCopies} internal copies`,
        `time           ${secs.toFixed(2)} s`,
      ]);
    });

  patch
    .command('apply')
    .description('build the new build from the old one and a patch (folder or http(s) URL)')
    .argument('<patch>', 'patch folder or base URL')
    .option('--from <oldDir>', 'installed old build (read only)')
    .option('--out <newDir>', 'folder to write the new build to (must not exist or be empty)')
    .option('--in-place <dir>', 'update this installed folder crash-safely instead')
    .option('--json', 'print the result as JSON')
    .action(async (source: string, opts: { from?: string; out?: string; inPlace?: string; json?: boolean }) => {
      const started = Date.now();
      const progress = createProgress({ label: 'apply', json: opts.json });
      const onProgress = (p: { doneBytes: number; totalBytes: number; phase: string }) => {
        if (p.phase === 'write') progress.update(p.doneBytes, p.totalBytes);
      };
      if (opts.inPlace !== undefined) {
        if (opts.from !== undefined || opts.out !== undefined) throw new Error('--in-place excludes --from and --out');
        const r = await applyPatchInPlace({ patch: source, dir: opts.inPlace, onProgress });
        progress.done();
        const secs = seconds(started);
        print(opts.json, { ...r, seconds: secs }, [
          `${r.outcome === 'applied' ? 'updated' : 'already updated (interrupted run completed)'} ${opts.inPlace}`,
          `copied         ${formatBytes(r.copiedBytes)} from the old build`,
          `patched        ${formatBytes(r.patchedBytes)} from the patch`,
          ...keptLines(r.kept),
          `time           ${secs.toFixed(2)} s`,
        ]);
        return;
      }
      if (opts.from === undefined || opts.out === undefined) throw new Error('give --from <oldDir> and --out <newDir>, or --in-place <dir>');
      const r = await applyPatch({ patch: source, fromDir: opts.from, outDir: opts.out, onProgress });
      progress.done();
      const secs = seconds(started);
      print(opts.json, { manifestId: r.pointer.to.manifestId, copiedBytes: r.copiedBytes, patchedBytes: r.patchedBytes, seconds: secs }, [
        `wrote          ${opts.out}`,
        `copied         ${formatBytes(r.copiedBytes)} from the old build`,
        `patched        ${formatBytes(r.patchedBytes)} from the patch`,
        `time           ${secs.toFixed(2)} s`,
      ]);
    });

  patch
    .command('recover')
    .description('complete or undo an interrupted in-place apply of a folder')
    .argument('<dir>', 'installed folder')
    .option('--json', 'print the result as JSON')
    .action(async (dir: string, opts: { json?: boolean }) => {
      const outcome = await recoverInPlace(dir);
      print(opts.json, { outcome }, [`recovery: ${outcome}`]);
    });
}
