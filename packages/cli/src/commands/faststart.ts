// `rockit faststart train|simulate`: the engine's FastStart training and simulator, locally.
import type { Command } from 'commander';
import { preloadBytes, SETUP_ROUND_TRIPS, simulateSession, trainImage, type SessionSimulation, type SetupModel } from '@rockit/engine';
import { loadTraces } from '../faststart/trace-files.js';
import { mbitKey, mbitToBytesPerSecond, parseBandwidths, readImageManifest, REPORT_BANDWIDTHS_MBIT } from '../faststart/image-manifest.js';
import { formatBytes } from '../progress.js';

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

interface SimulateFlags {
  image: string;
  sessions: string[];
  bandwidth: string;
  rtt: string;
  startup: string;
  setupRoundTrips: string;
  setup: boolean;
  preload?: string;
  json?: boolean;
}

/** A number flag in [0, max] (integer when asked). */
function numberFlag(text: string, flag: string, max: number, integer = false): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < 0 || v > max || (integer && !Number.isSafeInteger(v))) throw new Error(`${flag} must be ${integer ? 'an integer' : 'a number'} in [0, ${max}]`);
  return v;
}

/** Registers `rockit faststart ...`. */
export function register(program: Command): void {
  const fs = program.command('faststart').description('FastStart: train a stream order from traces, simulate sessions');

  fs.command('train')
    .description('write a re-sequenced image (same build, packs in the trained order, load profile) from traces')
    .requiredOption('--image <dir>', 'the image to re-sequence (folder or http(s) URL)')
    .requiredOption('--traces <items...>', 'trace files or folders (binary or NDJSON, plain or zstd)')
    .requiredOption('--out <dir>', 'output folder of the new image')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { image: string; traces: string[]; out: string; json?: boolean }) => {
      const loaded = await loadTraces(opts.traces);
      const r = await trainImage({ source: opts.image, traces: loaded.map((l) => l.trace), outDir: opts.out });
      const preload = Object.fromEntries(REPORT_BANDWIDTHS_MBIT.map((m) => [mbitKey(m), preloadBytes(r.profile, mbitToBytesPerSecond(m))]));
      const out = { out: opts.out, manifestName: r.manifestName, stats: r.stats, preloadBytes: preload };
      process.stdout.write(
        opts.json
          ? JSON.stringify(out) + '\n'
          : [
              `image          ${opts.out} (${r.manifestName})`,
              `traces         ${r.stats.traces} (${r.stats.records} reads; ${r.stats.unknownPathRecords + r.stats.beyondEndRecords} outside the build)`,
              `chunks read    ${r.stats.chunksRead} of ${r.stats.chunks} (+${r.stats.chunksByNeighbour} placed by neighbours)`,
              ...REPORT_BANDWIDTHS_MBIT.map((m) => `preload ${String(m).padStart(4)} Mbit/s ${formatBytes(preload[mbitKey(m)])}`),
            ].join('\n') + '\n',
      );
    });

  fs.command('simulate')
    .description('replay sessions against an image: time-to-play and stalls, vs the full download and the per-session oracle')
    .requiredOption('--image <dir>', 'image folder or http(s) URL')
    .requiredOption('--sessions <items...>', 'trace files or folders of held-out sessions')
    .option('--bandwidth <list>', 'comma-separated Mbit/s', '25,100,1000')
    .option('--rtt <ms>', 'round trip of a priority fetch (and of each setup request), ms', '50')
    .option('--startup <ms>', "the launcher's start-up before its first request (process start, module loading), ms", '0')
    .option('--setup-round-trips <n>', 'setup requests one after the other before the first chunk read (release.json, then image.json with the manifest)', String(SETUP_ROUND_TRIPS))
    .option('--no-setup', 'time from the first chunk read (the download alone), not from the launcher start')
    .option('--preload <bytes>', "preload to play with (default: the image profile's P(b))")
    .option('--json', 'print the report as JSON')
    .action(async (opts: SimulateFlags) => {
      const bandwidths = parseBandwidths(opts.bandwidth);
      const rtt = numberFlag(opts.rtt, '--rtt', 60_000);
      const startupMs = numberFlag(opts.startup, '--startup', 600_000);
      const roundTrips = numberFlag(opts.setupRoundTrips, '--setup-round-trips', 100, true);
      const fixed = opts.preload === undefined ? undefined : Number(opts.preload);
      if (fixed !== undefined && (!Number.isSafeInteger(fixed) || fixed < 0)) throw new Error('--preload must be an integer ≥ 0');
      const { manifest, manifestName, manifestSizeBytes } = await readImageManifest(opts.image);
      const setup: SetupModel | undefined = opts.setup ? { roundTrips, manifestBytes: manifestSizeBytes, startupMs } : undefined;
      const sessions = await loadTraces(opts.sessions);
      if (sessions.length === 0) throw new Error('no sessions to simulate');
      const rows = sessions.map(({ file, trace }) => {
        const results: Record<string, Omit<SessionSimulation, 'bytesPerSecond' | 'streamBytes' | 'unmappedRecords'>> = {};
        let unmapped = 0;
        for (const mbit of bandwidths) {
          const { bytesPerSecond: _b, streamBytes: _s, unmappedRecords, ...rest } = simulateSession(manifest, trace, {
            bytesPerSecond: mbitToBytesPerSecond(mbit),
            roundTripMs: rtt,
            setup,
            ...(fixed !== undefined ? { preloadBytes: fixed } : {}),
          });
          unmapped = unmappedRecords;
          results[mbitKey(mbit)] = rest;
        }
        return { file, sessionId: trace.header.sessionId, firstSession: trace.header.firstSession, records: trace.records.length, unmappedRecords: unmapped, results };
      });
      const streamBytes = manifest.chunks.reduce((a, c) => a + c.storedSizeBytes, 0);
      const summary = Object.fromEntries(
        bandwidths.map((mbit) => {
          const k = mbitKey(mbit);
          const rs = rows.map((r) => r.results[k]);
          return [
            k,
            {
              sessions: rs.length,
              medianPreloadBytes: median(rs.map((r) => r.stream.preloadBytes)),
              medianNoStallPreloadBytes: median(rs.map((r) => r.noStallPreloadBytes)),
              setupMs: rs[0]?.setupMs ?? 0,
              medianWaitMs: {
                fullDownload: median(rs.map((r) => r.fullDownload.timeToPlayMs)),
                oracle: median(rs.map((r) => r.oracle.timeToPlayMs)),
                stream: median(rs.map((r) => r.stream.waitMs)),
                priorityFetch: median(rs.map((r) => r.priorityFetch.waitMs)),
              },
              totalStalls: { stream: rs.reduce((a, r) => a + r.stream.stalls, 0), priorityFetch: rs.reduce((a, r) => a + r.priorityFetch.stalls, 0) },
            },
          ];
        }),
      );
      const image = { location: opts.image, manifestName, manifestBytes: manifestSizeBytes, streamBytes, chunks: manifest.chunks.length, hasProfile: manifest.profile !== undefined };
      const report = { image, roundTripMs: rtt, setup: setup ?? null, bandwidthsMbit: bandwidths, sessions: rows, summary };
      if (opts.json) {
        process.stdout.write(JSON.stringify(report) + '\n');
        return;
      }
      const lines = [
        `image ${opts.image}: ${formatBytes(streamBytes)}, ${manifest.chunks.length} chunks, ${sessions.length} sessions (medians)`,
        setup ? `times from the launcher's start: setup = start-up ${sec(startupMs)} + ${roundTrips} round trips of ${rtt} ms + the manifest (${formatBytes(manifestSizeBytes)}) at b` : 'times from the first chunk read (--no-setup)',
      ];
      for (const mbit of bandwidths) {
        const s = summary[mbitKey(mbit)];
        lines.push(
          `${String(mbit).padStart(5)} Mbit/s  preload ${formatBytes(s.medianPreloadBytes)} (no-stall ${formatBytes(s.medianNoStallPreloadBytes)})${setup ? `  setup ${sec(s.setupMs)}` : ''}  wait: stream ${sec(s.medianWaitMs.stream)}, priority fetch ${sec(s.medianWaitMs.priorityFetch)}, oracle ${sec(s.medianWaitMs.oracle)}, full download ${sec(s.medianWaitMs.fullDownload)}; stalls ${s.totalStalls.stream} / ${s.totalStalls.priorityFetch}`,
        );
      }
      process.stdout.write(lines.join('\n') + '\n');
    });
}
