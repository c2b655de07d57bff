// Play sessions over a build folder, written as trace files (engine trace format).
//
// The model: all sessions share one game structure derived from (seed, build): a start-up phase
// (binaries paged in: their start-up pages, about 30 %, nearly the same every session; configs and archive tables read, a common boot set read in a mostly fixed
// order, the intro movie on first sessions), then levels, each reading its own asset set — in
// mostly the same order, with per-player drops and swaps — partly while loading and the rest
// streamed during play, plus random extra reads. Sessions differ in length, start level and speed.

import { readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { encodeTrace } from '@rockit/engine';
import type { Trace, TraceRecord } from '@rockit/engine';
import { readGpakToc } from './archive-format.js';
import { hashString, mixSeed, Rng } from './prng.js';

export interface GenerateSessionsOptions {
  /** A build folder (a generated one gives asset-accurate reads; any folder works). */
  buildDir: string;
  count: number;
  seed: number;
  /** Receives session-0001.rtrace ... and sessions.json. */
  outDir: string;
  orgName?: string;
  appName?: string;
  buildId?: number;
  dxfName?: string;
  /** Start time of the first session, unix seconds (default 2026-01-01T00:00:00Z). */
  startTimeUnixSeconds?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SessionSummary {
  file: string;
  sessionId: string;
  firstSession: boolean;
  records: number;
  bytesRead: number;
  durationMs: number;
}

export interface SessionsDescription {
  generator: 'rockit-gamegen';
  seed: number;
  buildDir: string;
  sessions: SessionSummary[];
}

/** A readable range of the build: an asset, a table, a window of an opaque file. */
interface Unit {
  path: string;
  offsetBytes: number;
  lengthBytes: number;
  hash: number;
}

interface BuildFile {
  path: string;
  sizeBytes: number;
  executable: boolean;
}

interface GameStructure {
  binaries: BuildFile[];
  smallFiles: BuildFile[];
  tables: Unit[];
  boot: Unit[];
  movie: Unit[];
  levels: Unit[][];
  all: Unit[];
}

const SMALL_FILE_BYTES = 256 * 1024;
const MOVIE_PATH = /(^|\/)(movies?|videos?)\/|\.(bk2|mp4|webm|bik|usm)$/i;
const WINDOW_BYTES = 1024 * 1024;
/** Largest single read; bigger assets are read in pieces of this size. */
const MAX_READ_BYTES = 1024 * 1024;
const DEFAULT_START_UNIX_SECONDS = 1_767_225_600;
/** Binary page-in: 64 KiB pages, faults of up to 256 KiB of adjacent pages. */
const PAGE_BYTES = 64 * 1024;
const MAX_FAULT_BYTES = 256 * 1024;
/**
 * Share of a binary's pages on the start-up path (docs/benchmarks.md, FastStart: a 94 MB node binary has 32 %
 * of its pages resident after `node -e 0`, libpython3.11 23 % after `python3 -c 0`).
 */
const HOT_PAGE_PERCENT = 30;

function listFiles(root: string): BuildFile[] {
  const out: BuildFile[] = [];
  const walk = (rel: string) => {
    const entries = readdirSync(join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && !e.name.endsWith('.partial')) {
        const st = statSync(join(root, p));
        if (st.size > 0) out.push({ path: p, sizeBytes: st.size, executable: (st.mode & 0o111) !== 0 });
      }
    }
  };
  walk('');
  return out;
}

function windows(f: BuildFile, seed: number): Unit[] {
  const units: Unit[] = [];
  for (let off = 0; off < f.sizeBytes; off += WINDOW_BYTES) {
    units.push({ path: f.path, offsetBytes: off, lengthBytes: Math.min(WINDOW_BYTES, f.sizeBytes - off), hash: mixSeed(seed, hashString(f.path), off / WINDOW_BYTES) });
  }
  return units;
}

async function analyse(root: string, seed: number): Promise<GameStructure> {
  const files = listFiles(root);
  const s: GameStructure = { binaries: [], smallFiles: [], tables: [], boot: [], movie: [], levels: [], all: [] };
  const commonUnits: Unit[] = [];
  const levelArchives: Unit[][] = [];
  const opaque: Unit[] = [];
  for (const f of files) {
    const isBinary = f.executable || /\.(so(\.\d+)*|dll|exe|dylib)$/.test(f.path);
    if (isBinary && f.sizeBytes > SMALL_FILE_BYTES) {
      s.binaries.push(f);
      continue;
    }
    if (MOVIE_PATH.test(f.path)) {
      s.movie.push(...windows(f, seed));
      continue;
    }
    if (f.sizeBytes <= SMALL_FILE_BYTES) {
      s.smallFiles.push(f);
      continue;
    }
    const toc = await readGpakToc(join(root, f.path));
    if (toc) {
      s.tables.push({ path: f.path, offsetBytes: 0, lengthBytes: toc.headerBytes, hash: 0 });
      if (toc.tocBytes > 0) s.tables.push({ path: f.path, offsetBytes: toc.tocOffset, lengthBytes: toc.tocBytes, hash: 0 });
      const units = toc.entries
        .filter((e) => e.sizeBytes > 0)
        .map((e) => ({ path: f.path, offsetBytes: e.offsetBytes, lengthBytes: e.sizeBytes, hash: mixSeed(seed, hashString(f.path), hashString(e.name)) }));
      if (/common|shared|base|boot/i.test(f.path)) commonUnits.push(...units);
      else levelArchives.push(units);
      continue;
    }
    opaque.push(...windows(f, seed));
  }
  // Without named archives, levels are hash buckets of whatever large data there is.
  if (levelArchives.length < 2) {
    const pool = [...levelArchives.flat(), ...opaque];
    const n = Math.max(2, Math.min(12, Math.round(pool.length / 16)));
    const buckets: Unit[][] = Array.from({ length: n }, () => []);
    for (const u of pool) buckets[u.hash % n].push(u);
    levelArchives.length = 0;
    levelArchives.push(...buckets.filter((b) => b.length > 0));
  } else {
    commonUnits.push(...opaque);
  }
  const pct = (u: Unit, salt: number) => mixSeed(u.hash, salt) % 100;
  // Boot set: a large part of the common data plus a few assets from everywhere, in file order.
  s.boot = [...commonUnits.filter((u) => pct(u, 1) < 40), ...levelArchives.flat().filter((u) => pct(u, 2) < 2)];
  s.levels = levelArchives.map((units, i) => [
    ...units.filter((u) => pct(u, 3) < 85),
    ...commonUnits.filter((u) => pct(u, 100 + i) < 8),
  ]);
  s.all = [...commonUnits, ...levelArchives.flat(), ...s.movie];
  return s;
}

class SessionWriter {
  readonly records: TraceRecord[] = [];
  t = 0;
  constructor(private readonly r: Rng, private readonly bytesPerMs: number) {}

  /** Reads a unit (split into ≤ 1 MiB reads), advancing time by the I/O cost plus a small CPU gap. */
  read(u: Unit, maxBytes = u.lengthBytes): void {
    const end = u.offsetBytes + Math.min(u.lengthBytes, maxBytes);
    for (let off = u.offsetBytes; off < end; off += MAX_READ_BYTES) {
      const len = Math.min(MAX_READ_BYTES, end - off);
      this.records.push({ tMs: Math.round(this.t), path: u.path, offsetBytes: off, lengthBytes: len });
      this.t += len / this.bytesPerMs + this.r.float() * 2;
    }
  }

  wait(ms: number): void {
    this.t += ms;
  }
}

/** Mostly-fixed order: each element may swap with a near neighbour, and a few are skipped. */
function perturb<T>(r: Rng, items: readonly T[], dropShare: number, swapShare: number): T[] {
  const out = items.filter(() => !r.chance(dropShare));
  for (let i = 0; i + 1 < out.length; i++) {
    if (r.chance(swapShare)) {
      const j = Math.min(out.length - 1, i + r.int(1, 4));
      [out[i], out[j]] = [out[j], out[i]];
    }
  }
  return out;
}

function simulateSession(s: GameStructure, r: Rng, firstSession: boolean): TraceRecord[] {
  // Player's storage/CPU speed: 80-600 MB/s effective.
  const w = new SessionWriter(r, (80 + r.float() * 520) * 1000);
  // Start-up: binaries paged in — the build's hot pages (the start-up code path, the same in every session)
  // minus a few, plus a few cold ones; adjacent pages fault in together (up to 256 KiB), ascending.
  for (const b of s.binaries) {
    let runStart = -1;
    const pages = Math.ceil(b.sizeBytes / PAGE_BYTES);
    for (let p = 0; p <= pages; p++) {
      const hot = p < pages && mixSeed(hashString(b.path), p) % 100 < HOT_PAGE_PERCENT;
      const read = p < pages && (hot ? !r.chance(0.05) : r.chance(0.03));
      if (read && runStart < 0) runStart = p;
      if (runStart >= 0 && (!read || (p - runStart) * PAGE_BYTES >= MAX_FAULT_BYTES)) {
        const off = runStart * PAGE_BYTES;
        w.read({ path: b.path, offsetBytes: off, lengthBytes: Math.min(b.sizeBytes, p * PAGE_BYTES) - off, hash: 0 });
        runStart = read ? p : -1;
      }
    }
  }
  for (const f of s.smallFiles) {
    if (/^(config|data\/ui)/.test(f.path) || r.chance(0.6)) w.read({ path: f.path, offsetBytes: 0, lengthBytes: f.sizeBytes, hash: 0 });
  }
  for (const t of s.tables) w.read(t);
  for (const u of perturb(r, s.boot, 0.02, 0.1)) w.read(u);
  // Intro movie: watched in real time on a first session, mostly skipped later.
  if (s.movie.length > 0) {
    if (firstSession || r.chance(0.15)) {
      for (const u of s.movie.slice(0, 60)) {
        w.read(u);
        w.wait(400 + r.float() * 200);
      }
    } else w.read(s.movie[0], 65536);
  }
  w.wait(firstSession ? r.int(20_000, 90_000) : r.int(3_000, 30_000));

  // Levels until the session time is used up.
  const sessionMs = (firstSession ? r.logInt(5, 60) : r.logInt(3, 180)) * 60_000;
  let level = firstSession ? 0 : Math.min(s.levels.length - 1, Math.floor(Math.pow(r.float(), 0.7) * s.levels.length));
  while (w.t < sessionMs && s.levels.length > 0) {
    const set = perturb(r, s.levels[level], 0.1, 0.15);
    const loadCount = Math.ceil(set.length * (0.6 + r.float() * 0.2));
    for (const u of set.slice(0, loadCount)) w.read(u);
    const playMs = r.logInt(2, 25) * 60_000;
    const rest = set.slice(loadCount);
    const extras = Math.max(1, Math.round(s.all.length * 0.01));
    const stream: Unit[] = [...rest];
    if (s.all.length > 0) for (let i = 0; i < extras; i++) stream.splice(r.int(0, stream.length), 0, r.pick(s.all));
    if (stream.length === 0) w.wait(playMs);
    const gap = playMs / (stream.length + 1);
    for (const u of stream) {
      w.wait(gap * (0.5 + r.float()));
      w.read(u);
      if (w.t >= sessionMs) break;
    }
    level = (level + 1) % s.levels.length;
  }
  return w.records;
}

/**
 * Writes `count` play-session traces over the build in `buildDir`. Deterministic in (seed, build
 * folder content layout). Every record reads a real range of a real file of the build.
 * Errors: RangeError for count < 1 or a folder with no files; I/O errors from node:fs; the trace
 * encoder's TraceFormatError would mean a bug here.
 */
export async function generateSessions(opts: GenerateSessionsOptions): Promise<SessionsDescription> {
  if (!Number.isSafeInteger(opts.count) || opts.count < 1) throw new RangeError('count must be ≥ 1');
  if (!Number.isSafeInteger(opts.seed)) throw new RangeError('seed must be an integer');
  const s = await analyse(opts.buildDir, opts.seed);
  if (s.binaries.length + s.smallFiles.length + s.all.length === 0) throw new RangeError('the build folder holds no files');
  mkdirSync(opts.outDir, { recursive: true });
  const sessions: SessionSummary[] = [];
  let start = opts.startTimeUnixSeconds ?? DEFAULT_START_UNIX_SECONDS;
  for (let i = 0; i < opts.count; i++) {
    const r = new Rng(mixSeed(opts.seed, i + 1, 0x5e55));
    const firstSession = r.chance(0.35);
    const sessionId = r.u32().toString(16).padStart(8, '0') + r.u32().toString(16).padStart(8, '0');
    const records = simulateSession(s, r, firstSession);
    const trace: Trace = {
      header: {
        orgName: opts.orgName ?? 'demo-org',
        appName: opts.appName ?? 'demo-game',
        buildId: opts.buildId ?? 1,
        dxfName: opts.dxfName ?? '',
        sessionId,
        firstSession,
        startTimeUnixSeconds: start,
      },
      records,
    };
    start += r.int(60, 4 * 3600);
    const file = `session-${String(i + 1).padStart(4, '0')}.rtrace`;
    writeFileSync(join(opts.outDir, file), encodeTrace(trace));
    const last = records.length ? records[records.length - 1].tMs : 0;
    sessions.push({ file, sessionId, firstSession, records: records.length, bytesRead: records.reduce((a, x) => a + x.lengthBytes, 0), durationMs: last });
    opts.onProgress?.(i + 1, opts.count);
  }
  const description: SessionsDescription = { generator: 'rockit-gamegen', seed: opts.seed, buildDir: opts.buildDir, sessions };
  writeFileSync(join(opts.outDir, 'sessions.json'), JSON.stringify(description, null, 2) + '\n');
  return description;
}
