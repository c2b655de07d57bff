// Launcher benchmark (issue 9, item 4): a recorded session replayed through a REAL download from a running
// server (`rockit play --from … --replay <trace> --limit-rate …`), next to `rockit faststart simulate` for the
// same session and bandwidth, and next to a plain full install at the same rate.
//
//   node bench/launcher/replay.mjs [--size 200MB] [--sessions 12] [--rate 100] [--seconds 60] [--held-out 2]
//
// `--rate` is in Mbit/s. Sessions are cut to their first `--seconds` (both the replay and the simulator get the
// same cut trace): a replay runs in real time and gamegen sessions last minutes to hours. Needs `npx tsc -b`.
/* global fetch */
import { promises as fs, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout } from 'node:timers';
import { URL, fileURLToPath } from 'node:url';
import { join } from 'node:path';
import process from 'node:process';
import { createRunGuard, freePort, serverEnv } from '../lib/run-guard.mjs';
import { parseAnyTrace, encodeTrace } from '../../packages/engine/dist/index.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const size = arg('size', '200MB');
const sessionCount = Number(arg('sessions', '12'));
const mbit = Number(arg('rate', '100'));
const seconds = Number(arg('seconds', '60'));
const heldOut = Number(arg('held-out', '2'));
const CLI = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));
const SERVER = fileURLToPath(new URL('../../packages/server/dist/bin.js', import.meta.url));

const guard = createRunGuard({ name: 'launcher', maxSeconds: 3600 });
const rockit = async (args) => guard.spawnNode([CLI, ...args]).done;
const json = (out) => JSON.parse(out.trim().split('\n').at(-1));
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** `rockit <args> --json`, timed from the spawn: the whole command (ms to exit, ms to the first readyNow event). */
async function timedRockit(args) {
  const t0 = performance.now();
  const child = guard.spawnNode([CLI, ...args]);
  let readyMs;
  child.stdout.on('data', () => {
    if (readyMs === undefined && child.out.includes('"readyNow":true')) readyMs = performance.now() - t0;
  });
  const out = await child.done;
  return { result: json(out), readyMs, exitMs: performance.now() - t0 };
}

try {
  const work = guard.tempDir('work');
  const series = join(work, 'series');
  await rockit(['gamegen', 'build', '--seed', '1', '--size', size, '--versions', '1', '--json', '--out', series]);
  const traces = join(work, 'traces');
  await rockit(['gamegen', 'sessions', '--build', join(series, 'v1'), '--out', traces, '--count', String(sessionCount), '--json']);
  const files = (await fs.readdir(traces)).filter((f) => !f.endsWith('.json')).sort();
  const train = files.slice(0, files.length - heldOut).map((f) => join(traces, f));
  const test = files.slice(files.length - heldOut);
  const plain = join(work, 'plain');
  await rockit(['image', 'build', join(series, 'v1'), '--out', plain, '--json']);
  // The server's depot: the trained image as build 1 of bench/game, the plain one as build 1 of bench/plain.
  const data = join(work, 'data');
  const depot = join(data, 'blobs', 'cdn');
  const trainedPath = 'dxf/bench/game/0001/b0001-t001/';
  await rockit(['faststart', 'train', '--image', plain, '--traces', ...train, '--out', join(depot, trainedPath), '--json']);
  const plainPath = 'dxf/bench/plain/0001/b0001-t000/';
  await fs.mkdir(join(depot, 'dxf/bench/plain/0001'), { recursive: true });
  await fs.cp(plain, join(depot, plainPath), { recursive: true });
  for (const [app, p, dxf] of [['game', trainedPath, 'b0001-t001'], ['plain', plainPath, 'b0001-t000']]) {
    const img = JSON.parse(await fs.readFile(join(depot, p, 'image.json'), 'utf8'));
    const release = { format: 'rockit-release', formatVersion: 1, orgName: 'bench', appName: app, buildId: 1, buildName: '1', dxfName: dxf, image: { path: p, manifest: img.manifest.name, sizeBytes: img.storedBytes + img.manifest.sizeBytes }, patches: [], created: 1 };
    await fs.writeFile(join(depot, `dxf/bench/${app}/release.json`), JSON.stringify(release));
  }
  const port = await freePort();
  const server = guard.spawnNode([SERVER, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data', data], serverEnv({ ROCKIT_ADMIN_TOKEN: 'b'.repeat(32), ROCKIT_LOG_LEVEL: 'warn' }));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if ((await fetch(`${base}/cdn/dxf/bench/game/release.json`).catch(() => undefined))?.ok) break;
    if (i > 300 || server.exitCode !== null) throw new Error(`server did not come up:\n${server.tail}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // The round trip of one small range read against this server (what a priority fetch costs besides its bytes):
  // the simulator is told the same, so both sides model the same link.
  const packs = (await fs.readdir(join(depot, trainedPath, 'packs'))).sort();
  const trips = [];
  for (let i = 0; i < 21; i++) {
    const t = performance.now();
    const res = await fetch(`${base}/cdn/${trainedPath}packs/${packs[0]}`, { headers: { range: `bytes=${i * 4096}-${i * 4096 + 4095}` } });
    await res.arrayBuffer();
    trips.push(performance.now() - t);
  }
  const rttMs = Math.max(1, Math.round(trips.sort((x, y) => x - y)[10]));
  // The launcher's start-up before its first request: a cold `rockit play --help` (Node start, the play command's
  // modules, exit), median of 7; given to the simulator as --startup.
  const starts = [];
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    await rockit(['play', '--help']);
    starts.push(performance.now() - t);
  }
  const startupMs = Math.round(median(starts));
  const rows = [];
  for (const f of test) {
    const full = parseAnyTrace(await fs.readFile(join(traces, f)));
    const cut = { header: full.header, records: full.records.filter((r) => r.tMs <= seconds * 1000) };
    const cutFile = join(work, `${f}.cut.rktr`);
    await fs.writeFile(cutFile, encodeTrace(cut));
    const inst = join(work, `install-${f}`);
    const load = loadavg();
    const run = await timedRockit(['play', inst, '--from', base, '--app', 'bench/game', '--replay', cutFile, '--limit-rate', `${mbit}Mbit`, '--json']);
    const real = run.result;
    const simArgs = ['--rtt', String(rttMs), '--startup', String(startupMs), '--json'];
    const sim = json(await rockit(['faststart', 'simulate', '--image', join(depot, trainedPath), '--sessions', cutFile, '--bandwidth', String(mbit), ...simArgs]));
    const s = Object.values(sim.sessions[0].results)[0];
    // The same session simulated at the rate the launcher measured (what this machine delivered), to tell a model
    // difference from a machine that could not deliver the nominal rate (2 shared cores).
    const deliveredMbit = ((real.measuredBytesPerSecond ?? (mbit * 1e6) / 8) * 8) / 1e6;
    const atRate = json(await rockit(['faststart', 'simulate', '--image', join(depot, trainedPath), '--sessions', cutFile, '--bandwidth', deliveredMbit.toFixed(3), ...simArgs]));
    rows.push({ session: f, records: cut.records.length, load, readyMs: run.readyMs, real, sim: s, simDelivered: Object.values(atRate.sessions[0].results)[0], deliveredMbit });
    await fs.rm(inst, { recursive: true, force: true });
  }
  const fullDir = join(work, 'install-full');
  const fullLoad = loadavg();
  const full = await timedRockit(['install', base, 'bench/plain', '--to', fullDir, '--limit-rate', `${mbit}Mbit`, '--json']);
  const fullRun = full.result;
  const fullSeconds = full.exitMs / 1000;
  const ratio = (a, b) => (b > 0 ? (a / b).toFixed(2) : '—');
  const sec = (ms) => `${(ms / 1000).toFixed(2)} s`;
  const lines = [
    `launcher replay: ${size} build, ${sessionCount} sessions (${heldOut} held out, cut to ${seconds} s), ${mbit} Mbit/s, round trip ${rttMs} ms (median of 21 range reads), start-up ${startupMs} ms (median of 7 cold \`rockit play --help\`); both given to the simulator`,
    '',
    'Whole command: from the spawn of `rockit play` to its readyNow event, against `faststart simulate --startup --rtt` (setup included); wait = time to play + stall seconds',
    '| session | load avg | replay: time to play | simulate: time to play (setup) | ratio | replay: stalls (s) | simulate: stalls (s) | replay: wait | simulate: wait | ratio | replay: preload / measured rate |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const p = r.sim.priorityFetch;
      const wait = r.readyMs + r.real.stallSeconds * 1000;
      return `| ${r.session} | ${r.load} | ${sec(r.readyMs)} | ${sec(p.timeToPlayMs)} (${sec(r.sim.setupMs)}) | ${ratio(r.readyMs, p.timeToPlayMs)} | ${r.real.stalls} (${r.real.stallSeconds.toFixed(2)}) | ${p.stalls} (${(p.stallMs / 1000).toFixed(2)}) | ${sec(wait)} | ${sec(p.waitMs)} | ${ratio(wait, p.waitMs)} | ${(r.real.preloadBytes / 1e6).toFixed(1)} MB / ${(r.real.measuredBytesPerSecond / 1e6).toFixed(2)} MB/s (sim ${(p.preloadBytes / 1e6).toFixed(1)} MB) |`;
    }),
    '',
    'Where the setup went (ms from the process start, the launcher timeline): start-up = play() called; release, manifest = read; first read = stream starts; first chunk; ready',
    '| session | start-up | locked | release | manifest | first read | first chunk | ready | readyNow seen by the bench |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const t = r.real.timeline;
      return `| ${r.session} | ${r.real.startupMs} | ${t.locked} | ${t.release} | ${t.manifest} | ${t.firstRead} | ${t.firstChunk} | ${t.ready} | ${Math.round(r.readyMs)} |`;
    }),
    '',
    'Download part (from the first chunk read) against the simulator at the rate the launcher measured (--no-setup figure: downloadMs)',
    '| session | delivered rate | replay: ready − first read | simulate: time to play | ratio | replay: wait − setup | simulate: wait | ratio |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const p = r.simDelivered.priorityFetch;
      const play = r.real.timeline.ready - r.real.timeline.firstRead;
      const wait = play + r.real.stallSeconds * 1000;
      const simWait = p.waitMs - r.simDelivered.setupMs;
      return `| ${r.session} | ${r.deliveredMbit.toFixed(1)} Mbit/s | ${sec(play)} | ${sec(p.downloadMs)} | ${ratio(play, p.downloadMs)} | ${sec(wait)} | ${sec(simWait)} | ${ratio(wait, simWait)} |`;
    }),
    `plain full install at ${mbit} Mbit/s (load ${fullLoad}): ${fullSeconds.toFixed(2)} s wall, spawn to exit (${(fullRun.fetchedBytes / 1e6).toFixed(1)} MB); simulator's full download with setup: ${sec(rows[0]?.sim.fullDownload.timeToPlayMs)}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  process.stdout.write(JSON.stringify({ rttMs, startupMs, starts, rows, fullSeconds }) + '\n');
} finally {
  await guard.done();
}
