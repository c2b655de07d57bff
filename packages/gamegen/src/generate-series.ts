// A series of game builds v1..vN on disk, plus series.json describing every change.

import { rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBytes, contentBytes, createBuild, nextVersion } from './build-model.js';
import type { BuildModel, SeriesChange } from './build-model.js';
import { writeTar } from './tar-writer.js';
import { writeFile } from './write-build.js';

export interface GenerateSeriesOptions {
  /** Any integer; the same seed always yields the same bytes. */
  seed: number;
  /** Approximate total size of v1 (later versions grow by a few percent). */
  sizeBytes: number;
  /** Number of versions, ≥ 1. */
  versions: number;
  /** Output folder; receives v1..vN (folders), optionally vK.tar, and series.json. Existing vK folders are replaced. */
  outDir: string;
  /** Also write outDir/vK.tar for each version (deterministic ustar). */
  tar?: boolean;
  onProgress?: (p: SeriesProgress) => void;
}

export interface SeriesProgress {
  version: number;
  phase: 'files' | 'tar';
  doneBytes: number;
  totalBytes: number;
}

export interface SeriesVersion {
  version: number;
  dir: string;
  tar?: string;
  files: number;
  sizeBytes: number;
}

/** Contents of series.json. */
export interface SeriesDescription {
  generator: 'rockit-gamegen';
  formatVersion: 1;
  seed: number;
  requestedSizeBytes: number;
  versions: SeriesVersion[];
  /** changes[i] lists what turned versions[i] into versions[i + 1]. */
  changes: Array<{ from: number; to: number; changes: SeriesChange[] }>;
}

/** The recipes of every version (no disk I/O); exposed for tests and sessions. */
export function seriesModels(seed: number, sizeBytes: number, versions: number): { models: BuildModel[]; changes: SeriesChange[][] } {
  const models = [createBuild(seed, sizeBytes)];
  const changes: SeriesChange[][] = [];
  for (let v = 2; v <= versions; v++) {
    const next = nextVersion(models[models.length - 1], seed, v);
    models.push(next.model);
    changes.push(next.changes);
  }
  return { models, changes };
}

/**
 * Writes a deterministic build series. Memory does not grow with sizeBytes beyond the recipes
 * (a few bytes per asset and per code function); files are streamed in 1 MiB pieces.
 * Errors: RangeError for a non-integer seed, sizeBytes < 64 KiB or versions < 1; I/O errors as thrown by node:fs.
 */
export async function generateSeries(opts: GenerateSeriesOptions): Promise<SeriesDescription> {
  if (!Number.isSafeInteger(opts.seed)) throw new RangeError('seed must be an integer');
  if (!Number.isSafeInteger(opts.sizeBytes) || opts.sizeBytes < 64 * 1024) throw new RangeError('sizeBytes must be at least 64 KiB');
  if (!Number.isSafeInteger(opts.versions) || opts.versions < 1) throw new RangeError('versions must be ≥ 1');
  await mkdir(opts.outDir, { recursive: true });
  const { models, changes } = seriesModels(opts.seed, opts.sizeBytes, opts.versions);
  const described: SeriesVersion[] = [];
  for (let i = 0; i < models.length; i++) {
    const version = i + 1;
    const model = models[i];
    const dir = `v${version}`;
    const root = join(opts.outDir, dir);
    rmSync(root, { recursive: true, force: true });
    const totalBytes = buildBytes(model);
    let doneBytes = 0;
    const report = (phase: SeriesProgress['phase']) => (n: number) => {
      doneBytes += n;
      opts.onProgress?.({ version, phase, doneBytes, totalBytes });
    };
    const onFiles = report('files');
    for (const f of model.files) {
      const n = writeFile(root, f, onFiles);
      if (n !== contentBytes(f.content)) throw new Error(`internal: ${f.path} wrote ${n} bytes, expected ${contentBytes(f.content)}`);
    }
    const entry: SeriesVersion = { version, dir, files: model.files.length, sizeBytes: totalBytes };
    if (opts.tar) {
      doneBytes = 0;
      const tarName = `${dir}.tar`;
      await writeTar(root, model.files.map((f) => ({ path: f.path, mode: f.mode, sizeBytes: contentBytes(f.content) })), join(opts.outDir, tarName), report('tar'));
      entry.tar = tarName;
    }
    described.push(entry);
  }
  const description: SeriesDescription = {
    generator: 'rockit-gamegen',
    formatVersion: 1,
    seed: opts.seed,
    requestedSizeBytes: opts.sizeBytes,
    versions: described,
    changes: changes.map((c, i) => ({ from: i + 1, to: i + 2, changes: c })),
  };
  writeFileSync(join(opts.outDir, 'series.json'), JSON.stringify(description, null, 2) + '\n');
  return description;
}
