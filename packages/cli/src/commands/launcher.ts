// `rockit install|update|verify|status`: the player's side, on top of @rockit/client. Human progress bars on
// stderr by default; with --json, one JSON object a line on stdout (progress events with phase, bytes, total,
// rate, eta, ready; then one `{"phase":"result",...}` or `{"phase":"error",...}` line) for launchers that drive
// the CLI. Ctrl-C (SIGINT/SIGTERM) pauses: the state is saved and the same command resumes.
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { parseAnyTrace } from '@rockit/engine';
import { ClientError, install, parseRate, play, status, update, verify, type ClientEvent } from '@rockit/client';
import { createProgress, formatBytes } from '../progress.js';

interface CommonFlags {
  json?: boolean;
  key?: string;
  limitRate?: string;
  untilReady?: boolean;
}

function emitter(json: boolean | undefined, label: string) {
  const bar = createProgress({ label, json });
  let readyPrinted = false;
  return {
    event(e: ClientEvent) {
      if (json) {
        process.stdout.write(JSON.stringify(e) + '\n');
        return;
      }
      bar.update(e.bytes, e.total);
      if (e.readyNow && !readyPrinted) {
        readyPrinted = true;
        bar.done();
        process.stdout.write(`ready to play${e.preloadBytes !== undefined && e.preloadBytes < e.total ? ` (preload ${formatBytes(e.preloadBytes)} of ${formatBytes(e.total)}; the rest streams in)` : ''}\n`);
      }
    },
    done() {
      bar.done();
    },
  };
}

function result(json: boolean | undefined, data: Record<string, unknown>, lines: string[]): void {
  process.stdout.write(json ? JSON.stringify({ phase: 'result', ...data }) + '\n' : lines.join('\n') + '\n');
}

/** Runs an action; in --json mode a failure is also one `{"phase":"error"}` line on stdout. */
async function guarded(json: boolean | undefined, fn: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const ac = new AbortController();
  const onSignal = () => ac.abort(new ClientError('server-unavailable', 'paused', true));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await fn(ac.signal);
    if (ac.signal.aborted) process.exitCode = 130;
  } catch (err) {
    if (json) {
      const e = err instanceof ClientError ? { error: err.code, resumable: err.resumable } : { error: 'internal' };
      process.stdout.write(JSON.stringify({ phase: 'error', ...e, message: (err as Error).message }) + '\n');
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function rate(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseRate(text);
}

/** Registers the launcher commands (in the order `rockit --help` lists them). */
export function register(program: Command): void {
  registerInstall(program);
  registerUpdate(program);
  registerVerify(program);
  registerStatus(program);
  registerPlay(program);
}

function registerInstall(program: Command): void {
  program
    .command('install')
    .description('install (or resume installing) a published game: FastStart preload first, then the rest in the background')
    .argument('<server>', 'rockit-edge server URL (or a depot / CDN origin URL)')
    .argument('<app>', '<org>/<app>')
    .requiredOption('--to <dir>', 'install folder (new or empty; an unfinished install there is resumed)')
    .option('--key <key>', 'download key, for apps with keys')
    .option('--limit-rate <rate>', 'download at most this fast (e.g. 100Mbit, 12MB, 800k; bytes per second without unit)')
    .option('--until-ready', 'exit once the game can start (ready to play); the next install/update run fetches the rest')
    .option('--json', 'progress events and the result as JSON lines on stdout')
    .action(async (server: string, app: string, opts: CommonFlags & { to: string }) => {
      const m = /^([^/]+)\/([^/]+)$/.exec(app);
      if (!m) throw new ClientError('invalid-argument', `expected <org>/<app>, got ${JSON.stringify(app)}`);
      await guarded(opts.json, async (signal) => {
        const out = emitter(opts.json, 'install');
        const r = await install({ server, orgName: m[1], appName: m[2], dir: opts.to, key: opts.key, limitRateBytesPerSecond: rate(opts.limitRate), untilReady: opts.untilReady, signal, onEvent: (e) => out.event(e) });
        out.done();
        result(opts.json, { ok: true, ...r }, [
          `${r.complete ? 'installed' : r.ready ? 'ready to play (download continues with install/update)' : 'paused (run the same command to resume)'}: ${m[1]}/${m[2]} build ${r.build.buildName} (${r.build.dxfName})`,
          `downloaded     ${formatBytes(r.fetchedBytes)}${r.resumed ? ' (resumed)' : ''}`,
          ...(r.readyAfterMs !== undefined ? [`ready after    ${(r.readyAfterMs / 1000).toFixed(2)} s${r.preloadBytes !== undefined ? ` (preload ${formatBytes(r.preloadBytes)})` : ''}`] : []),
        ]);
      });
    });
}

function registerUpdate(program: Command): void {
  program
    .command('update')
    .description('update an install to the current release (the patch from the installed build when offered), or resume an unfinished install')
    .argument('<dir>', 'install folder')
    .option('--key <key>', 'a new download key (kept for later updates)')
    .option('--limit-rate <rate>', 'download at most this fast (e.g. 100Mbit)')
    .option('--until-ready', 'for an unfinished install: exit once the game can start')
    .option('--no-patch', 'never use a patch: download the changed chunks of the new image')
    .option('--json', 'progress events and the result as JSON lines on stdout')
    .action(async (dir: string, opts: CommonFlags & { patch?: boolean }) => {
      await guarded(opts.json, async (signal) => {
        const out = emitter(opts.json, 'update');
        const r = await update({ dir, key: opts.key, limitRateBytesPerSecond: rate(opts.limitRate), untilReady: opts.untilReady, noPatch: opts.patch === false, signal, onEvent: (e) => out.event(e) });
        out.done();
        const what = {
          'up-to-date': `up to date: build ${r.build.buildName} (${r.build.dxfName})`,
          patched: `updated by patch: build ${r.from?.buildName} -> ${r.build.buildName}`,
          chunks: `updated by chunks: build ${r.from?.buildName} -> ${r.build.buildName}${r.fallback ? ` (${r.fallback})` : ''}`,
          resumed: `install resumed: build ${r.build.buildName}${r.install?.complete ? ' complete' : ' not complete yet'}`,
          retrained: `same build ${r.build.buildName}, new stream order ${r.build.dxfName}`,
        }[r.outcome];
        result(opts.json, { ok: true, ...r }, [what, `downloaded     ${formatBytes(r.downloadedBytes)}`, ...(r.kept && r.kept.conflicts.length > 0 ? r.kept.conflicts.map((c) => `kept your ${c.path} as ${c.keptAs}`) : [])]);
      });
    });
}

function registerVerify(program: Command): void {
  program
    .command('verify')
    .description("check an install's files against the build; --repair re-fetches only damaged or missing files' chunks (exit 1 when damage remains)")
    .argument('<dir>', 'install folder')
    .option('--repair', 'fetch the damaged and missing files again')
    .option('--key <key>', 'download key (default: the one kept in the install)')
    .option('--json', 'progress events and the result as JSON lines on stdout')
    .action(async (dir: string, opts: CommonFlags & { repair?: boolean }) => {
      await guarded(opts.json, async () => {
        const out = emitter(opts.json, 'verify');
        const r = await verify({ dir, repair: opts.repair, key: opts.key, onEvent: (e) => out.event(e) });
        out.done();
        const repaired = new Set(r.repaired);
        result(opts.json, { ...r }, r.problems.length === 0 ? ['ok: every file matches the build'] : [...r.problems.map((p) => `${p.problem.padEnd(10)} ${p.path}${repaired.has(p.path) ? ' (repaired)' : ''}`), r.ok ? `repaired ${r.repaired.length} file(s), downloaded ${formatBytes(r.fetchedBytes)}` : `${r.problems.length - r.repaired.length} file(s) damaged${opts.repair ? '' : ' (run verify --repair)'}`]);
        if (!r.ok) process.exitCode = 1;
      });
    });
}

function registerStatus(program: Command): void {
  program
    .command('status')
    .description('build, image, bytes present and whether an update waits')
    .argument('<dir>', 'install folder')
    .option('--offline', 'do not ask the server for the current release')
    .option('--json', 'the status as one JSON line')
    .action(async (dir: string, opts: { json?: boolean; offline?: boolean }) => {
      await guarded(opts.json, async () => {
        const s = await status(dir, { offline: opts.offline });
        result(opts.json, { ...s }, [
          `${s.orgName}/${s.appName} from ${s.server}`,
          `build          ${s.build.buildName} (id ${s.build.buildId}, ${s.build.dxfName})${s.phase === 'installing' ? ' — install not complete' : ''}`,
          `present        ${formatBytes(s.bytesPresent)} of ${formatBytes(s.bytesTotal)}`,
          `update         ${s.updateAvailable === null ? `unknown (${s.offlineReason ?? 'offline'})` : s.updateAvailable ? `build ${s.latest?.buildName} (${s.latest?.dxfName}) waits${s.patchBytes !== undefined ? `, patch ${formatBytes(s.patchBytes)}` : ''}` : 'none'}`,
          ...(s.updateInterrupted ? [`interrupted    ${s.updateInterrupted.message}`] : []),
          ...(s.settled === 'finished' ? ['settled        a killed update had begun its swap: it was finished'] : []),
          ...(s.busy ? [`busy           ${s.busy}`] : []),
        ]);
      });
    });
}

function registerPlay(program: Command): void {
  program
    .command('play')
    .description('run the game while it streams: waits for ready to play, mounts the install read-only (FUSE) and runs the command in it; or --replay a recorded session')
    .argument('<dir>', 'install folder')
    .argument('[command...]', 'the game command, after --')
    .option('--mount <dir>', 'mount point (default: a new temporary folder)')
    .option('--from <server>', 'install into <dir> first (a new or empty folder) from this server; with --app')
    .option('--app <org/app>', 'the app to install with --from')
    .option('--replay <trace>', 'replay this session trace (binary or NDJSON) through the download and report time-to-play and stalls')
    .option('--limit-rate <rate>', 'download at most this fast (e.g. 100Mbit)')
    .option('--key <key>', 'download key (default: the one kept in the install)')
    .option('--json', 'progress events and the result as JSON lines on stdout (the game\'s stdout goes to stderr)')
    .action(async (dir: string, command: string[], opts: CommonFlags & { mount?: string; replay?: string; from?: string; app?: string }) => {
      const app = opts.app === undefined ? undefined : /^([^/]+)\/([^/]+)$/.exec(opts.app);
      if ((opts.from === undefined) !== (opts.app === undefined) || (opts.app !== undefined && !app)) throw new ClientError('invalid-argument', '--from <server> and --app <org>/<app> go together');
      await guarded(opts.json, async (signal) => {
        const trace = opts.replay ? parseAnyTrace(await readFile(opts.replay)) : undefined;
        const out = emitter(opts.json, 'play');
        const r = await play({
          dir,
          command,
          replay: trace,
          ...(opts.from && app ? { from: { server: opts.from, orgName: app[1], appName: app[2] } } : {}),
          mountPoint: opts.mount,
          key: opts.key,
          limitRateBytesPerSecond: rate(opts.limitRate),
          gameStdoutToStderr: opts.json,
          signal,
          onEvent: (e) => out.event(e),
          onMounted: (mnt) => {
            if (opts.json) process.stdout.write(JSON.stringify({ phase: 'mounted', mountPoint: mnt }) + '\n');
            else process.stderr.write(`mounted at ${mnt}\n`);
          },
        });
        out.done();
        result(opts.json, { ...r }, [
          `time to play   ${(r.timeToPlayMs / 1000).toFixed(2)} s (${((r.startupMs + r.timeToPlayMs) / 1000).toFixed(2)} s from the process start)`,
          `stalls         ${r.stalls} (${r.stallSeconds.toFixed(2)} s)`,
          `downloaded     ${formatBytes(r.fetchedBytes)}${r.complete ? ' (install complete)' : ' (run update to finish the download)'}`,
          ...(r.exitCode !== null ? [`game exit code ${r.exitCode}`] : []),
        ]);
        if (r.exitCode !== null && r.exitCode !== 0) process.exitCode = r.exitCode;
      });
    });
}
