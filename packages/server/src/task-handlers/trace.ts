import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { IMAGE_JSON_NAME, openImage, openImageSource, parseAnyTrace, preloadBytes as enginePreloadBytes, repackImage, trainStreamOrder, type LoadProfile, type Manifest, type Trace } from '@rockit/engine';
import { findImportOfBuild, updateImport } from '../db/repositories/import.repository.js';
import { findAppById, setProcessing } from '../db/repositories/app.repository.js';
import { newestReadyBuild, replaceBuildImage } from '../db/repositories/build.repository.js';
import { orgNameOf } from '../db/repositories/org.repository.js';
import { countTraces, listTraces } from '../db/repositories/trace.repository.js';
import { ensureTraining, parseQuality, updateTraining, type TrainingQuality } from '../db/repositories/training.repository.js';
import type { TraceRow } from '../db/faststart-tables.js';
import { StepError, dxfNameFor } from '../pipeline/index.js';
import { storageStep, throwIfAborted } from '../pipeline/errors.js';
import {
  indexManifest,
  mapTrace,
  meanCoverage,
  preloadFigures,
  preloadImproves,
  profileOf,
  REFERENCE_BANDWIDTHS,
  type MappedTrace,
  type PreloadFigures,
} from '../pipeline/faststart.js';
import { imagePrefix, joinKey } from '../publish/layout.js';
import { downloadPrefix, openRead, uploadFolderExact } from '../pipeline/store-io.js';
import { PermanentTaskError, type TaskHandler } from '../queue/worker.js';
import { appQueueKey, type TraceTaskPayload } from '../queue/task-types.js';
import type { ImportDeps } from './import-deps.js';


/** Newest traces a training reads at most. */
export const MAX_TRAINING_TRACES = 1000;
/** Largest stored trace read back (the intake limits uploads well below this). */
const MAX_TRACE_BLOB_BYTES = 64 << 20;

export interface TraceTaskResult {
  buildId: number;
  /** The image variant current after the task: the new one when `improved`. */
  dxfName: string;
  improved: boolean;
  /** Traces that fell on the build (of `tracesStored`). */
  traces: number;
  tracesStored: number;
  coverage: number;
  preloadBytes: TrainingQuality['preloadBytes'];
  previousPreloadBytes: TrainingQuality['preloadBytes'];
  /** The decision's measure: no-stall preload of every training session, previous and trained order. */
  envelope?: TrainingQuality['envelope'];
  /** The deploy task that publishes the new image (normal deploy path: release.json last, grace cleanup). */
  deployTask?: string;
  alreadyDone?: boolean;
}

/**
 * The `trace` task (api.md §8, §10): trains the app's newest ready build on its traces (the newest
 * MAX_TRAINING_TRACES; traces of older builds map onto it by path and offset, reads outside it
 * count as uncovered, a trace that does not fall on it at all is skipped) and, only when the
 * predicted preload improves, writes the re-sequenced image (same chunks, packs in the trained
 * order, the load profile in the manifest) to the depot as the build's next variant
 * (`b0003-t001`...), makes it the build's image in one transaction with the training's bookkeeping,
 * and enqueues the app's `deploy` — which publishes it like any release (release.json last on every
 * origin, the replaced variant removed after the grace period). Without improvement only the
 * training's figures change.
 *
 * Runs in the app's queue (never beside its mkraw/deploy). Idempotent: the new variant's depot
 * folder is rewritten exactly on a retry (no release names it before the commit), and a task taken
 * over after its commit finds its own result in the training and returns it.
 * Errors: PermanentTaskError when the app is gone, has no ready build, or none of its traces can be
 * used (clear message); storage failures are retried.
 */
export function traceHandler(deps: ImportDeps): TaskHandler {
  return async ({ task, payload, signal, progress }) => {
    const { db, clock, blobStore } = deps;
    const { appId } = payload as TraceTaskPayload;
    const app = await findAppById(db, appId);
    const orgName = app && (await orgNameOf(db, app.org_id));
    if (!app || orgName === undefined) throw new PermanentTaskError('the app was deleted');
    const training = await ensureTraining(db, app.org_id, app.id, clock.now());
    const done = parseQuality(training.quality);
    if (done && done.task === task.name) return resultOf(done, true);

    const build = await newestReadyBuild(db, app.id);
    const source = build && (await findImportOfBuild(db, app.id, Number(build.build_id)));
    if (!build || !source || build.dxf_name === null || source.manifest_file === null) {
      throw new PermanentTaskError(`app ${app.name} has no ready build to train`);
    }
    const buildId = Number(build.build_id);
    const currentDxf = build.dxf_name;
    const tracesStored = await countTraces(db, app.id);
    const rows = await listTraces(db, app.org_id, app.id, { limit: MAX_TRAINING_TRACES });
    if (rows.length === 0) throw new PermanentTaskError(`app ${app.name} has no traces to train on`);

    const work = join(deps.workDir, 'trace', task.name);
    await rm(work, { recursive: true, force: true });
    await mkdir(work, { recursive: true });
    try {
      // 1. The build's current image, from the depot (only its manifest is read for the training).
      const currentDir = join(work, 'current');
      await storageStep('reading the image from the depot failed', () =>
        downloadPrefix(blobStore, joinKey(deps.depotPrefix + '/', imagePrefix(orgName, app.name, buildId, currentDxf)), currentDir, signal ? { signal } : {}),
      );
      const manifest = await readManifest(currentDir);
      progress(0.2);

      // 2. Traces → first-need times on this build's chunks.
      const { mapped, unreadable, outside } = await loadTraces(deps, rows, manifest, signal);
      if (mapped.length === 0) {
        throw new PermanentTaskError(
          `none of the ${rows.length} traces of ${app.name} can be used for build ${buildId} ` +
            `(${outside} read nothing of the build's files, ${unreadable} unreadable)`,
        );
      }
      progress(0.4);

      // 3. Train (engine: order by how likely and how early sessions need each chunk, profile with a
      // leave-one-out margin) and predict. Whether the new order is better is judged on one measure for
      // both orders: the preload that spares every training session a stall (profileOf's envelope).
      const trained = trainStreamOrder(manifest, mapped.map((m) => m.trace));
      const identity = manifest.chunks.map((_, i) => i);
      const before = preloadFigures(profileOf(manifest, identity, mapped.map((m) => m.mapped)));
      const after = preloadFigures(profileOf(manifest, trained.order, mapped.map((m) => m.mapped)));
      const improved = preloadImproves(before, after);
      const coverage = meanCoverage(mapped.map((m) => m.mapped));
      // What the API shows: the launcher's preload (engine P(b), margin included) of the published image.
      const previousPreloadBytes = manifest.profile ? launcherPreload(manifest.profile) : before;
      const preloadBytes = launcherPreload(trained.profile);
      const order = trained.order;
      const profile = trained.profile;
      progress(0.5);

      const now = () => clock.now();
      const quality: TrainingQuality = {
        coverage, preloadBytes: improved ? preloadBytes : previousPreloadBytes, previousPreloadBytes,
        task: task.name, buildId, traces: mapped.length, improved, dxfName: currentDxf, envelope: { before, after },
      };
      if (!improved) {
        await updateTraining(db, app.id, {
          quality: JSON.stringify(quality), last_processed_ms: now(), traces_at_last_run: tracesStored, updated_ms: now(),
        });
        return resultOf(quality, false, tracesStored);
      }

      // 4. The re-sequenced image, as the build's next variant, into the depot (image.json last).
      const dxfName = dxfNameFor(buildId, training.next_training);
      const outDir = join(work, 'trained');
      const repacked = await repackImage({ source: currentDir, outDir, order, profile });
      const uploaded = await storageStep('uploading the trained image to the depot failed', () =>
        uploadFolderExact(blobStore, outDir, joinKey(deps.depotPrefix + '/', imagePrefix(orgName, app.name, buildId, dxfName)), { last: [IMAGE_JSON_NAME], signal }),
      );
      progress(0.9);

      // 5. One transaction: the build's image, the training, the deploy that publishes it.
      quality.dxfName = dxfName;
      const committed = await deps.queue.transaction(async (trx) => {
        // The once-key of the deploy: the build's image moving from the variant trained on to the new
        // one (compare-and-set). A build that changed under us (a newer import rotated it, or its
        // variant moved) claims nothing.
        const deploy = await deps.queue.enqueueFollowUpOnce(
          trx,
          { type: 'deploy', payload: { importTask: source.task_name }, orgId: app.org_id, appName: app.name, buildId, queueKey: appQueueKey(app.id) },
          () => replaceBuildImage(trx, app.id, buildId, currentDxf, dxfName, uploaded.sizeBytes),
        );
        if (!deploy) return undefined;
        const t = now();
        await updateImport(trx, source.task_name, { dxf_name: dxfName, manifest_file: repacked.manifestName });
        quality.deployTask = deploy.name;
        await updateTraining(trx, app.id, {
          next_training: training.next_training + 1, quality: JSON.stringify(quality), last_processed_ms: t,
          traces_at_last_run: tracesStored, updated_ms: t,
        });
        await setProcessing(trx, app.id, t);
        return deploy.name;
      });
      if (committed === undefined) {
        // The build changed under us (a newer import rotated it, or its variant moved): try again later.
        await blobStore.deletePrefix(joinKey(deps.depotPrefix + '/', imagePrefix(orgName, app.name, buildId, dxfName))).catch(() => undefined);
        throw new StepError('storage-failed', `build ${buildId} of ${app.name} changed during the training; it runs again`);
      }
      return resultOf(quality, false, tracesStored);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  };
}

function resultOf(q: TrainingQuality, alreadyDone: boolean, tracesStored?: number): TraceTaskResult {
  return {
    buildId: q.buildId, dxfName: q.dxfName, improved: q.improved, traces: q.traces, tracesStored: tracesStored ?? q.traces,
    coverage: q.coverage, preloadBytes: q.preloadBytes, previousPreloadBytes: q.previousPreloadBytes ?? q.preloadBytes,
    ...(q.envelope ? { envelope: q.envelope } : {}),
    ...(q.deployTask ? { deployTask: q.deployTask } : {}),
    ...(alreadyDone ? { alreadyDone: true } : {}),
  };
}

/** The engine's P(b) (what a launcher preloads) at the reference bandwidths. */
function launcherPreload(profile: LoadProfile): PreloadFigures {
  const out = {} as PreloadFigures;
  for (const [k, bits] of Object.entries(REFERENCE_BANDWIDTHS) as Array<[keyof PreloadFigures, number]>) out[k] = enginePreloadBytes(profile, bits / 8);
  return out;
}

async function readManifest(dir: string): Promise<Manifest> {
  const img = await openImage(openImageSource(dir));
  await img.source.close();
  return img.manifest;
}

/** Reads and maps the traces; an unreadable trace or one that misses the build entirely is skipped. */
export async function loadTraces(
  deps: Pick<ImportDeps, 'blobStore'>,
  rows: TraceRow[],
  manifest: Manifest,
  signal?: AbortSignal,
): Promise<{ mapped: Array<{ trace: Trace; mapped: MappedTrace }>; unreadable: number; outside: number }> {
  const index = indexManifest(manifest);
  const mapped: Array<{ trace: Trace; mapped: MappedTrace }> = [];
  let unreadable = 0;
  let outside = 0;
  for (const row of rows) {
    throwIfAborted(signal);
    let bytes: Buffer;
    try {
      bytes = await readBlob(deps.blobStore, row.blob_key);
    } catch {
      unreadable += 1;
      continue;
    }
    let m: MappedTrace;
    let trace: Trace;
    try {
      trace = parseAnyTrace(bytes, { maxFileBytes: MAX_TRACE_BLOB_BYTES });
      m = mapTrace(index, trace);
    } catch {
      unreadable += 1;
      continue;
    }
    if (m.firstNeed.size === 0) {
      outside += 1;
      continue;
    }
    mapped.push({ trace, mapped: m });
  }
  return { mapped, unreadable, outside };
}

/**
 * The app's newest traces (at most MAX_TRAINING_TRACES), decoded; unreadable ones are left out.
 * mkraw orders a new build's first image by them.
 */
export async function readAppTraces(deps: Pick<ImportDeps, 'db' | 'blobStore'>, orgId: string, appId: string): Promise<Trace[]> {
  const rows = await listTraces(deps.db, orgId, appId, { limit: MAX_TRAINING_TRACES });
  const out: Trace[] = [];
  for (const row of rows) {
    try {
      out.push(parseAnyTrace(await readBlob(deps.blobStore, row.blob_key), { maxFileBytes: MAX_TRACE_BLOB_BYTES }));
    } catch {
      // A trace that cannot be read back is no reason to fail an import.
    }
  }
  return out;
}

async function readBlob(store: ImportDeps['blobStore'], key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of await openRead(store, key)) {
    size += (c as Buffer).length;
    if (size > MAX_TRACE_BLOB_BYTES) throw new Error('trace blob too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

