// Checking an installed build against its manifest and repairing it: damaged or missing files are named, and
// with `repair` only their chunks are fetched again (from the installed build's image). Player's files are
// never looked at or touched.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { HttpImageSourceOptions } from '@rockit/engine';
import { CorruptionError, openImage } from '@rockit/engine';
import { ChunkStream } from './chunk-stream.js';
import { ClientError, asClientError } from './errors.js';
import type { EventSink } from './events.js';
import { checkFiles, layOut, type FileProblem } from './layout.js';
import { RateLimiter } from './rate-limiter.js';
import { Remote, mapHttpError } from './remote.js';
import { lockFolder, readManifest, readState, stateDir } from './state.js';
import { recoverMissingFolder, settleInterrupted } from './update.js';

export interface VerifyOptions {
  dir: string;
  repair?: boolean;
  key?: string;
  onEvent?: EventSink;
  http?: HttpImageSourceOptions;
}

export interface VerifyResult {
  /** What was wrong before any repair. */
  problems: FileProblem[];
  /** Paths repaired (all of `problems` when the repair succeeded). */
  repaired: string[];
  /** Stored bytes downloaded by the repair. */
  fetchedBytes: number;
  ok: boolean;
}

/**
 * Verifies every entry of the installed build (whole-file SHA-256). With `repair`, re-creates missing or damaged
 * entries from the chunks of the installed build's image. Errors: ClientError ('not-installed', 'locked',
 * 'outdated' when the installed build's image is no longer served: update instead, network errors).
 */
export async function verify(opts: VerifyOptions): Promise<VerifyResult> {
  await recoverMissingFolder(opts.dir);
  const lock = await lockFolder(opts.dir);
  try {
    const found = await readState(opts.dir);
    if (!found) throw new ClientError('not-installed', `${opts.dir} holds no install`);
    if (found.phase !== 'installed') throw new ClientError('not-installed', `the install in ${opts.dir} is not complete: run update to resume it`);
    // A killed update: check the build the folder really holds.
    const { state } = await settleInterrupted(opts.dir, found);
    const m = await readManifest(opts.dir, state.build.manifestId);
    if (!m) throw new ClientError('not-installed', `the installed build's manifest is missing from ${stateDir(opts.dir)}: reinstall`);
    let hashed = 0;
    const problems = await checkFiles(opts.dir, m, (n) => {
      hashed += n;
      opts.onEvent?.({ phase: 'verify', bytes: hashed, total: state.build.rawBytes, rate: 0, eta: null, ready: true });
    });
    if (!opts.repair || problems.length === 0) return { problems, repaired: [], fetchedBytes: 0, ok: problems.length === 0 };
    const remote = new Remote({ server: state.server, orgName: state.orgName, appName: state.appName, key: opts.key ?? state.key, http: opts.http });
    await remote.release();
    const src = remote.source(state.build.imagePath);
    const img = await openImage(src).catch((err: unknown) => {
      if (err instanceof CorruptionError) throw new ClientError('outdated', `the image of the installed build ${state.build.buildName} is no longer served: run update`);
      throw mapHttpError(err);
    });
    // The served image must be the installed build (same files), else its chunks cannot repair it.
    const served = new Map(img.manifest.files.map((f) => [f.path, f]));
    for (const f of m.files) {
      const g = served.get(f.path);
      if (f.type === 'file' && (!g || !Buffer.from(g.sha256).equals(f.sha256))) throw new ClientError('outdated', `the served image is not the installed build: run update`);
    }
    const im = img.manifest;
    const byPath = new Map(im.files.map((f) => [f.path, f]));
    for (const p of problems) await rm(join(opts.dir, p.path), { recursive: true, force: true });
    const recreated = await layOut(opts.dir, im);
    const present = new Uint8Array(Math.ceil(im.chunks.length / 8)).fill(0xff);
    const needed = new Set<number>();
    for (const fi of recreated) for (const ci of im.files[fi].chunks) needed.add(ci);
    for (const p of problems) for (const ci of byPath.get(p.path)?.chunks ?? []) needed.add(ci);
    for (const ci of needed) present[ci >> 3] &= ~(1 << (ci & 7));
    const stream = new ChunkStream({ dir: opts.dir, manifest: im, source: src, present, save: async () => undefined, beforeRead: () => remote.freshen(), limiter: new RateLimiter(state.limitRateBytesPerSecond) });
    stream.onChunk = () => opts.onEvent?.({ phase: 'repair', bytes: stream.presentStoredBytes, total: stream.totalStoredBytes, rate: 0, eta: null, ready: false });
    await stream.run();
    const after = await checkFiles(opts.dir, m);
    const still = new Set(after.map((p) => p.path));
    return { problems, repaired: problems.map((p) => p.path).filter((p) => !still.has(p)), fetchedBytes: stream.fetchedBytes, ok: after.length === 0 };
  } catch (err) {
    throw asClientError(err);
  } finally {
    await lock.release();
  }
}
