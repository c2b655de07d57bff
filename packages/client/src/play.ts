// Play while streaming: continue (or finish) the install in the background, wait for *ready to play*, then run
// the game against a read-only FUSE mount of the install (reads wait for their chunks, fetched with priority),
// or replay a recorded session's reads (a trace) through `ensure` to measure time-to-play and stalls.
// The mount is removed and the download state saved when the game exits, on errors and on signals.
import { spawn } from 'node:child_process';
import type { HttpImageSourceOptions, Trace } from '@rockit/engine';
import { ClientError, asClientError } from './errors.js';
import type { EventSink } from './events.js';
import { mountInstall, type Mount } from './fuse-mount.js';
import { openInstall, runInstall, type Installation, type InstallResult, type SetupTimeline } from './install.js';
import { lockFolder, readState } from './state.js';

export interface PlayOptions {
  dir: string;
  /** The game command (argv); run with the mount (or the install folder, once complete) as working folder. */
  command?: string[];
  /** Replay this session's reads instead of running a command. */
  replay?: Trace;
  /** Start a new install in `dir` (empty or missing) from this server and app when it holds none. */
  from?: { server: string; orgName: string; appName: string };
  /** Mount point (default: a new temporary folder). */
  mountPoint?: string;
  key?: string;
  limitRateBytesPerSecond?: number;
  measureMs?: number;
  onEvent?: EventSink;
  /** Told the mount point once the game is about to start. */
  onMounted?: (mountPoint: string) => void;
  /** Send the game's stdout to our stderr (keeps a --json stdout clean). */
  gameStdoutToStderr?: boolean;
  signal?: AbortSignal;
  http?: HttpImageSourceOptions;
}

export interface PlayResult {
  /** The game's exit code (null when killed by a signal or for a replay). */
  exitCode: number | null;
  /** From the start of this run (the call of play) to *ready to play*. */
  timeToPlayMs: number;
  /**
   * From the process start (performance.timeOrigin) to the call of play: the program's own start-up (Node, module
   * loading). startupMs + timeToPlayMs is the time to play from the launcher's start.
   */
  startupMs: number;
  /** The steps of the start, ms from the process start (see SetupTimeline; empty when the install was complete). */
  timeline: SetupTimeline;
  /**
   * Of timeToPlayMs, the start-up before the first chunk read: lock, release, image.json and manifest fetched,
   * folders made (a resumed install also checks its files; a fresh one lays them out while the first reads run).
   * 0 when the install was already complete.
   */
  setupMs: number;
  /** Reads that had to wait for chunks, and the total wait. */
  stalls: number;
  stallSeconds: number;
  /** Stored bytes downloaded by this run. */
  fetchedBytes: number;
  /** The install was complete when the game (or replay) ended. */
  complete: boolean;
  preloadBytes?: number;
  measuredBytesPerSecond?: number;
}

/**
 * See the file comment. The download keeps running while the game runs and is stopped (state saved) when it
 * exits; `rockit update` or the next play continues it. Errors: those of install, ClientError 'invalid-argument'
 * (FUSE unavailable, nothing to run).
 */
export async function play(opts: PlayOptions): Promise<PlayResult> {
  if (!opts.command?.length && !opts.replay) throw new ClientError('invalid-argument', 'nothing to play: give a command (after --) or --replay <trace>');
  const started = performance.now();
  const startupMs = Math.round(started);
  const timeline: SetupTimeline = {};
  const lock = await lockFolder(opts.dir);
  let inst: Installation | undefined;
  let mount: Mount | undefined;
  try {
    const state = await readState(opts.dir);
    if (!state && !opts.from) throw new ClientError('not-installed', `${opts.dir} holds no install (give the server and app to install it)`);
    if (state?.phase === 'installed') {
      const none = { timeToPlayMs: 0, startupMs, timeline, setupMs: 0, stalls: 0, stallSeconds: 0, fetchedBytes: 0, complete: true };
      if (opts.replay) return { exitCode: null, ...none };
      const exitCode = await runGame(opts.command!, opts.dir, opts.signal, opts.gameStdoutToStderr);
      return { exitCode, ...none };
    }
    const src = state ?? opts.from!;
    inst = await openInstall({ server: src.server, orgName: src.orgName, appName: src.appName, dir: opts.dir, key: opts.key, limitRateBytesPerSecond: opts.limitRateBytesPerSecond, http: opts.http, timeline }, lock);
    const installation = inst;
    const setupMs = performance.now() - started;
    let readyAt: number | undefined;
    let onReady!: () => void;
    const ready = new Promise<void>((r) => (onReady = r));
    const download: Promise<InstallResult> = runInstall(installation, {
      measureMs: opts.measureMs,
      signal: opts.signal,
      timeline,
      onEvent: (e) => {
        if (e.readyNow && readyAt === undefined) {
          readyAt = performance.now() - started;
          onReady();
        }
        opts.onEvent?.(e);
      },
    });
    download.catch(() => undefined);
    await Promise.race([ready, download.then(() => undefined)]);
    opts.signal?.throwIfAborted();
    if (readyAt === undefined) {
      const r = await download; // ended without ready: stopped or failed
      if (!r.ready) throw new ClientError('server-unavailable', 'the download stopped before the game could start (run again to resume)', true);
      readyAt = performance.now() - started;
    }
    let exitCode: number | null = null;
    let stalls = 0;
    let stallMs = 0;
    if (opts.replay) {
      ({ stalls, stallMs } = await replay(installation, opts.replay, opts.signal));
    } else {
      mount = await mountInstall(installation, opts.mountPoint);
      opts.onMounted?.(mount.mountPoint);
      exitCode = await runGame(opts.command!, mount.mountPoint, opts.signal, opts.gameStdoutToStderr);
      stalls = mount.stats.stalls;
      stallMs = mount.stats.stallMs;
    }
    const complete = installation.stream.complete;
    installation.stream.stop();
    const r = await download.catch((err: unknown) => {
      if (complete) throw err;
      return undefined;
    });
    return {
      exitCode,
      timeToPlayMs: Math.round(readyAt),
      startupMs,
      timeline,
      setupMs: Math.round(setupMs),
      stalls,
      stallSeconds: stallMs / 1000,
      fetchedBytes: installation.stream.fetchedBytes,
      complete: r?.complete ?? complete,
      preloadBytes: r?.preloadBytes,
      measuredBytesPerSecond: r?.measuredBytesPerSecond,
    };
  } catch (err) {
    throw asClientError(err);
  } finally {
    await mount?.unmount();
    if (inst) await inst.close();
    else await lock.release();
  }
}

/** Replays a session's reads at their recorded times after *ready to play*; a read that must wait is a stall. */
async function replay(inst: Installation, trace: Trace, signal?: AbortSignal): Promise<{ stalls: number; stallMs: number }> {
  const t0 = performance.now();
  let stallMs = 0;
  let stalls = 0;
  for (const r of trace.records) {
    signal?.throwIfAborted();
    const due = t0 + r.tMs + stallMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    let present: boolean;
    try {
      present = inst.has(r.path, r.offsetBytes, r.lengthBytes);
    } catch {
      continue; // a path the build does not have (a trace of another build): not a read of this one
    }
    if (present) continue;
    const s = performance.now();
    await inst.ensure(r.path, r.offsetBytes, r.lengthBytes);
    stalls++;
    stallMs += performance.now() - s;
  }
  return { stalls, stallMs };
}

/** Runs the game with inherited stdio; forwards SIGINT/SIGTERM (via `signal`) to it. */
function runGame(command: string[], cwd: string, signal?: AbortSignal, stdoutToStderr = false): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), { cwd, stdio: ['inherit', stdoutToStderr ? process.stderr : 'inherit', 'inherit'], env: { ...process.env, ROCKIT_GAME_DIR: cwd } });
    const onAbort = () => child.kill('SIGTERM');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new ClientError('invalid-argument', `cannot start ${command[0]}: ${err.message}`));
    });
    child.once('exit', (code) => {
      signal?.removeEventListener('abort', onAbort);
      resolve(code);
    });
  });
}
