// Installing a published build: fresh or resumed, with FastStart (*ready to play* after the preload, the rest
// streamed in the background, priority reads through `ensure`). The folder's state says what is present; a
// killed install resumes from it. Player's files are never touched: only the build's own paths are written.
import { readdir, statfs } from 'node:fs/promises';
import { CodecPool, openImage, type HttpImageSourceOptions, type Manifest } from '@rockit/engine';
import { ChunkStream, clearBit, decodeThreads } from './chunk-stream.js';
import { ClientError, asClientError, diskFullError, isDiskFull } from './errors.js';
import type { ClientEvent, EventSink } from './events.js';
import { checkBuildPaths, checkFiles, layOut, layOutDirs, layOutFiles } from './layout.js';
import { preloadBytes } from './preload.js';
import { RateLimiter } from './rate-limiter.js';
import { Remote, mapHttpError, type Release } from './remote.js';
import {
  STATE_DIR,
  STATE_FORMAT,
  STATE_VERSION,
  lockFolder,
  readChunks,
  readManifest,
  readState,
  removeChunks,
  writeChunks,
  writeManifest,
  writeState,
  type BuildRef,
  type InstallState,
  type Lock,
} from './state.js';

/**
 * The download rate is measured for at least this long before the preload is evaluated; after that P(b) is
 * re-evaluated with the running rate at every read until *ready to play*.
 */
export const DEFAULT_MEASURE_MS = 1000;
const EVENT_EVERY_MS = 250;
/** Bound on the manifest read before image.json gives its size (release.json's image size bounds it too). */
const MANIFEST_HINT_MAX_BYTES = 256 * 1024 * 1024;

export interface InstallOptions {
  /** rockit-edge server or depot URL. */
  server: string;
  orgName: string;
  appName: string;
  dir: string;
  key?: string;
  /** Bytes per second; remembered in the state for resumed runs. */
  limitRateBytesPerSecond?: number;
  /** Stop once *ready to play* (the rest is fetched by the next run). */
  untilReady?: boolean;
  onEvent?: EventSink;
  signal?: AbortSignal;
  parallelReads?: number;
  measureMs?: number;
  http?: HttpImageSourceOptions;
  /** Filled with the set-up steps' times, ms from the process start (see SetupTimeline). */
  timeline?: SetupTimeline;
}

/**
 * When each step of an install's start happened, ms from the process start (performance.timeOrigin): `locked`
 * (the folder's lock taken), `release` (release.json read), `manifest` (image.json and the manifest read and
 * checked), `firstRead` (the stream may start its first chunk read), `firstChunk` (the first chunks arrived,
 * verified and written), `ready` (*ready to play*).
 */
export type SetupTimeline = Partial<Record<'locked' | 'release' | 'manifest' | 'firstRead' | 'firstChunk' | 'ready', number>>;

const mark = (t: SetupTimeline | undefined, step: keyof SetupTimeline): void => {
  if (t && t[step] === undefined) t[step] = Math.round(performance.now());
};

export interface InstallResult {
  build: BuildRef;
  /** Every file is present and verified. */
  complete: boolean;
  ready: boolean;
  resumed: boolean;
  /** Stored bytes downloaded by this run. */
  fetchedBytes: number;
  /** FastStart preload (stream bytes) and the rate it was computed for. */
  preloadBytes?: number;
  measuredBytesPerSecond?: number;
  /** Milliseconds from the start of this run to *ready to play*. */
  readyAfterMs?: number;
}

export function buildRef(release: Release, m: Manifest, manifestId: string): BuildRef {
  let rawBytes = 0;
  for (const f of m.files) if (f.type === 'file') rawBytes += f.sizeBytes;
  let storedBytes = 0;
  for (const c of m.chunks) storedBytes += c.storedSizeBytes;
  return { buildId: release.buildId, buildName: release.buildName, dxfName: release.dxfName, imagePath: release.image.path, manifestId, rawBytes, storedBytes };
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).filter((n) => n !== STATE_DIR).length === 0;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** Refuses to start when the disk cannot hold what is left to write (the install stays resumable). */
async function checkSpace(dir: string, needBytes: number): Promise<void> {
  const s = await statfs(dir).catch(() => undefined);
  if (!s) return;
  const free = s.bavail * s.bsize;
  if (free < needBytes) throw diskFullError(dir, needBytes - free, free);
}

/**
 * A build being installed in a folder: `run()` downloads, `ensure()` asks for bytes ahead of the stream.
 * Obtain one with `openInstall`; `close()` releases the folder's lock.
 */
export class Installation {
  readonly dir: string;
  readonly state: InstallState;
  readonly remote: Remote;
  readonly manifest: Manifest;
  readonly stream: ChunkStream;
  readonly resumed: boolean;
  private readonly lock: Lock;
  private readonly pools: { stream: CodecPool; urgent: CodecPool };
  /** Resolves when every file and link of the build exists (at once unless a fresh install lays them out meanwhile). */
  readonly laidOut: Promise<void>;
  layoutDone = false;

  constructor(init: { dir: string; state: InstallState; remote: Remote; manifest: Manifest; stream: ChunkStream; resumed: boolean; lock: Lock; pools: { stream: CodecPool; urgent: CodecPool }; laidOut: Promise<void> }) {
    this.dir = init.dir;
    this.state = init.state;
    this.remote = init.remote;
    this.manifest = init.manifest;
    this.stream = init.stream;
    this.resumed = init.resumed;
    this.lock = init.lock;
    this.pools = init.pools;
    this.laidOut = init.laidOut.then(() => {
      this.layoutDone = true;
    });
    this.laidOut.catch(() => this.stream.stop()); // reported by runInstall
  }

  /** See ChunkStream.ensure: resolves when the range is present and verified. */
  ensure(path: string, offset: number, length: number): Promise<void> {
    return this.stream.ensure(path, offset, length);
  }

  /** Whether bytes [offset, offset + length) of `path` are present now (no fetch). */
  has(path: string, offset: number, length: number): boolean {
    return this.stream.has(path, offset, length);
  }

  async close(): Promise<void> {
    this.stream.stop();
    await this.laidOut.catch(() => undefined);
    await Promise.all([this.pools.stream.close(), this.pools.urgent.close()]);
    await this.lock.release();
  }
}

/**
 * Opens (or creates) the install of `orgName/appName` in `dir`: takes the lock, reads the release (a fresh
 * install) or the state (a resumed one), lays the build's entries out. Errors: ClientError ('locked',
 * 'folder-not-empty', 'key-required', 'key-rejected', 'server-unavailable', 'release-invalid', 'disk-full').
 */
export async function openInstall(opts: InstallOptions, lock?: Lock): Promise<Installation> {
  const ownLock = lock ?? (await lockFolder(opts.dir));
  mark(opts.timeline, 'locked');
  // The decode workers start now, while the release and the manifest are fetched and the files laid out.
  const pools = { stream: new CodecPool({ threads: decodeThreads() }), urgent: new CodecPool({ threads: 1 }) };
  try {
    let state = await readState(opts.dir);
    const fresh = !state;
    if (state && (state.orgName !== opts.orgName || state.appName !== opts.appName)) {
      throw new ClientError('folder-not-empty', `${opts.dir} holds ${state.orgName}/${state.appName}, not ${opts.orgName}/${opts.appName}`);
    }
    if (state?.phase === 'installed') throw new ClientError('folder-not-empty', `${opts.dir} already holds build ${state.build.buildName}: use update`);
    if (!state && !(await isEmptyOrMissing(opts.dir))) throw new ClientError('folder-not-empty', `${opts.dir} is not empty: install into a new or empty folder`);
    const remote = new Remote({ server: state?.server ?? opts.server, orgName: opts.orgName, appName: opts.appName, key: opts.key ?? state?.key, http: opts.http });
    const release = await remote.release();
    mark(opts.timeline, 'release');
    let manifest: Manifest | undefined;
    let resumed = false;
    if (state) manifest = await readManifest(opts.dir, state.build.manifestId);
    if (state && manifest) {
      resumed = true;
    } else {
      const src = remote.source(release.image.path);
      // release.json names the manifest: it is fetched together with image.json.
      const manifestHint = { name: release.image.manifest, maxBytes: Math.min(release.image.sizeBytes, MANIFEST_HINT_MAX_BYTES) };
      const img = await openImage(src, { manifestHint }).catch((err: unknown) => {
        throw mapHttpError(err);
      });
      manifest = img.manifest;
      mark(opts.timeline, 'manifest');
      checkBuildPaths(manifest);
      const id = await writeManifest(opts.dir, manifest);
      state = {
        format: STATE_FORMAT,
        formatVersion: STATE_VERSION,
        server: remote.server,
        orgName: opts.orgName,
        appName: opts.appName,
        ...(opts.key !== undefined ? { key: opts.key } : {}),
        phase: 'installing',
        build: buildRef(release, manifest, id),
      };
    }
    if (opts.limitRateBytesPerSecond !== undefined) state!.limitRateBytesPerSecond = opts.limitRateBytesPerSecond;
    await writeState(opts.dir, state!);
    const m = manifest;
    const st = state!;
    const n = m.chunks.length;
    let present = resumed ? await readChunks(opts.dir, st.build.manifestId, n) : undefined;
    present ??= new Uint8Array(Math.ceil(n / 8));
    // A fresh install lays its files out while the first reads run (start-up time before *ready to play*):
    // the folders now, the files in the background (see Installation.laidOut). A resumed one checks them first.
    if (fresh) layOutDirs(opts.dir, m);
    else for (const fi of await layOut(opts.dir, m)) for (const ci of m.files[fi].chunks) clearBit(present, ci);
    let missingRaw = 0;
    const counted = new Uint8Array(n);
    for (const f of m.files) {
      if (f.type !== 'file') continue;
      for (const ci of f.chunks) {
        if (!counted[ci] && !((present[ci >> 3] >> (ci & 7)) & 1)) missingRaw += m.chunks[ci].rawSizeBytes;
        counted[ci] = 1;
      }
    }
    await checkSpace(opts.dir, missingRaw);
    const source = remote.source(st.build.imagePath);
    const stream = new ChunkStream({
      dir: opts.dir,
      manifest: m,
      source,
      present,
      save: (bits) => writeChunks(opts.dir, st.build.manifestId, n, bits),
      beforeRead: () => remote.freshen(),
      parallelReads: opts.parallelReads,
      limiter: new RateLimiter(st.limitRateBytesPerSecond),
      pool: pools.stream,
      urgentPool: pools.urgent,
    });
    const laidOut = fresh ? layOutFiles(opts.dir, m, { growOnly: true }).then(() => undefined) : Promise.resolve();
    mark(opts.timeline, 'firstRead');
    return new Installation({ dir: opts.dir, state: st, remote, manifest: m, stream, resumed, lock: ownLock, pools, laidOut });
  } catch (err) {
    await Promise.all([pools.stream.close(), pools.urgent.close()]);
    if (!lock) await ownLock.release();
    throw asClientError(err);
  }
}

/**
 * Installs (or resumes installing) the current build of an app into `dir`, FastStart-style: measures the
 * download rate for `measureMs`, fetches the profile's preload P(b) first, reports *ready to play*
 * (`readyNow` event), then streams the rest in stream order. With `untilReady` it stops there. At the end,
 * every file is checked against its SHA-256 (damaged ones are fetched again) and the state says 'installed'.
 * Errors: those of openInstall and ChunkStream.run (all resumable: run again).
 */
export async function install(opts: InstallOptions): Promise<InstallResult> {
  const inst = await openInstall(opts);
  try {
    return await runInstall(inst, opts);
  } finally {
    await inst.close();
  }
}

/** Drives an opened Installation to completion (or to *ready to play* with untilReady). */
export async function runInstall(inst: Installation, opts: Pick<InstallOptions, 'onEvent' | 'signal' | 'untilReady' | 'measureMs' | 'timeline'>): Promise<InstallResult> {
  const { stream, manifest: m } = inst;
  const started = performance.now();
  const total = stream.totalStoredBytes;
  const startBytes = stream.presentStoredBytes;
  let preload: number | undefined;
  let measured: number | undefined;
  let readyAfterMs: number | undefined;
  let lastEvent = 0;
  const measureMs = opts.measureMs ?? DEFAULT_MEASURE_MS;
  const rate = () => {
    const secs = (performance.now() - started) / 1000;
    return secs > 0 ? (stream.presentStoredBytes - startBytes) / secs : 0;
  };
  // The link's rate for P(b): measured from the first read's arrival on, so that the start-up of the first
  // request (connection, worker threads) does not count as a slow link.
  let first: { at: number; bytes: number } | undefined;
  const linkRate = () => {
    const secs = first ? (performance.now() - first.at) / 1000 : 0;
    return first && secs > 0 && stream.presentStoredBytes > first.bytes ? (stream.presentStoredBytes - first.bytes) / secs : rate();
  };
  const isReady = () => inst.layoutDone && (stream.complete || (preload !== undefined && stream.prefixBytes >= preload));
  const emit = (phase: ClientEvent['phase'], force = false, extra: Partial<ClientEvent> = {}) => {
    const now = performance.now();
    if (!force && now - lastEvent < EVENT_EVERY_MS) return;
    lastEvent = now;
    const r = rate();
    const left = total - stream.presentStoredBytes;
    opts.onEvent?.({ phase, bytes: stream.presentStoredBytes, total, rate: Math.round(r), eta: r > 0 ? Math.round(left / r) : left === 0 ? 0 : null, ready: isReady(), ...(preload !== undefined ? { preloadBytes: preload } : {}), ...extra });
  };
  /** P(b) at the running rate, once the rate has been measured long enough; fixed once ready. */
  const decide = () => {
    if (readyAfterMs !== undefined || !m.profile) return;
    if (performance.now() - started < measureMs && !stream.complete) return;
    const r = linkRate();
    if (r <= 0 && preload !== undefined) return;
    measured = r;
    preload = preloadBytes(m.profile, r, total);
  };
  const checkReady = () => {
    if (readyAfterMs === undefined && isReady()) {
      readyAfterMs = Math.round(performance.now() - started);
      mark(opts.timeline, 'ready');
      emit('stream', true, { readyNow: true });
      if (measured && measured > 0 && !inst.resumed) {
        inst.state.measuredBytesPerSecond = Math.round(measured);
        void writeState(inst.dir, inst.state).catch(() => undefined);
      }
      if (opts.untilReady) stream.stop();
    }
  };
  // Nothing known about the reads without a profile: ready = complete. With a profile: measure first, or start
  // from the rate the previous run measured (a resumed install, e.g. play after install --until-ready).
  if (!m.profile) preload = total;
  else if (inst.resumed && inst.state.measuredBytesPerSecond) {
    measured = inst.state.measuredBytesPerSecond;
    preload = preloadBytes(m.profile, measured, total);
  }
  const timer = setTimeout(() => {
    decide();
    checkReady();
  }, measureMs);
  const onAbort = () => stream.stop();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  stream.onChunk = () => {
    if (!first) mark(opts.timeline, 'firstChunk');
    first ??= { at: performance.now(), bytes: stream.presentStoredBytes };
    decide();
    checkReady();
    emit(readyAfterMs === undefined ? 'preload' : 'stream');
  };
  emit('preload', true);
  checkReady();
  void inst.laidOut.then(checkReady, () => undefined);
  try {
    // Resolves early when stopped on purpose (untilReady, signal); throws only on failures.
    if (!stream.complete) await stream.run();
    await inst.laidOut.catch((err: unknown) => {
      throw isDiskFull(err) ? stream.diskFull() : asClientError(err);
    });
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
  decide();
  checkReady();
  const base = { build: inst.state.build, resumed: inst.resumed, fetchedBytes: stream.fetchedBytes, preloadBytes: preload, measuredBytesPerSecond: measured ? Math.round(measured) : undefined, readyAfterMs };
  if (!stream.complete) {
    emit('paused', true);
    return { ...base, complete: false, ready: isReady() };
  }
  await finish(inst, opts.onEvent);
  emit('done', true);
  return { ...base, complete: true, ready: true };
}

/** Every chunk is present: check every file, then mark the build installed. */
async function finish(inst: Installation, onEvent?: EventSink): Promise<void> {
  const m = inst.manifest;
  let hashed = 0;
  const rawTotal = inst.state.build.rawBytes;
  const problems = await checkFiles(inst.dir, m, (n) => {
    hashed += n;
    onEvent?.({ phase: 'verify', bytes: hashed, total: rawTotal, rate: 0, eta: null, ready: true });
  });
  if (problems.length > 0) {
    // Written right but changed since (disk error, another program): fetch those files again next run.
    const present = (await readChunks(inst.dir, inst.state.build.manifestId, m.chunks.length)) ?? new Uint8Array(Math.ceil(m.chunks.length / 8));
    const byPath = new Map(m.files.map((f) => [f.path, f]));
    for (const p of problems) for (const ci of byPath.get(p.path)?.chunks ?? []) clearBit(present, ci);
    await writeChunks(inst.dir, inst.state.build.manifestId, m.chunks.length, present);
    throw new ClientError('origin-corrupt', `files changed while installing: ${problems.map((p) => p.path).join(', ')}; run again to fetch them`, true);
  }
  inst.state.phase = 'installed';
  await writeState(inst.dir, inst.state);
  await removeChunks(inst.dir);
}
