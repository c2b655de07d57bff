// Step 3 of an import (api.md §7.2 `deploy`): publish a release from the depot to origins, and the
// delayed removal of what a newer release no longer needs (api.md §7.3, grace period).
import { IMAGE_JSON_NAME, PATCH_POINTER_NAME } from '@rockit/engine';

import type { Origin } from '../publish/origin.js';
import type { BlobStore } from '../storage/blob-store.js';
import { StepError, canceledError, throwIfAborted, type StepErrorDetails } from './errors.js';
import { joinKey } from '../publish/layout.js';
import { parseRelease, releasePath, serializeRelease, type ReleaseDocument } from './release.js';
import { COPY_CONCURRENCY, forEachLimited, openRead } from './store-io.js';

/** A deployment's origin, named for error reports (`deployment`) and results. */
export interface DeployTarget {
  /** The deployment's name (api.md §9.1), or e.g. `depot` for the installation's own origin. */
  deployment: string;
  origin: Origin;
}

/** Where mkraw left the release's files: the layout lives under `prefix` in `store`. */
export interface DepotSource {
  store: BlobStore;
  prefix: string;
}

export interface DeployProgress {
  deployment: string;
  doneFiles: number;
  totalFiles: number;
  /** Overall fraction of the step over all targets, in [0, 1]. */
  fraction: number;
}

export interface DeployOptions {
  release: ReleaseDocument;
  depot: DepotSource;
  targets: DeployTarget[];
  onProgress?: (p: DeployProgress) => void;
  signal?: AbortSignal;
  /** Files copied at once per target (default COPY_CONCURRENCY). */
  concurrency?: number;
  /**
   * false: publish the release's image and patches but leave each target's release.json as it is
   * (a staged push: the live build stays live). Default true.
   */
  writeRelease?: boolean;
}

export interface TargetResult {
  deployment: string;
  ok: boolean;
  /** Files written (absent or of another size on the target). */
  filesCopied: number;
  /** Files already present with the same size. */
  filesSkipped: number;
  bytesCopied: number;
  /** Whether release.json was written (only after every file of the release is on the target). */
  releaseWritten: boolean;
  /** The failure, for a target that is not ok. */
  error?: StepError;
}

/** A deploy where at least one target failed; `deployment` names the first, `results` has them all. */
export class DeployError extends StepError {
  readonly results: TargetResult[];
  constructor(message: string, details: StepErrorDetails & { deployment: string }, results: TargetResult[]) {
    super('deploy-failed', message, details);
    this.results = results;
  }
}

interface SourceFile {
  /** Key relative to the layout root (= the key on an origin). */
  key: string;
  sizeBytes: number;
}

/**
 * Publishes `release` to every target: copies the image folder and each patch folder from the
 * depot (streamed; a file already on the target with the same size is skipped — packs and
 * manifests are content-addressed, and pointer files are rewritten anyway), writes each folder's
 * pointer file (image.json, patch.json) after the folder's other files, and writes `release.json`
 * LAST, only once every file of the release is on that target. Targets are independent: one
 * failing does not stop the others. Safe to run again (handlers may run twice).
 *
 * Returns one result per target, in order. Errors: `storage-failed` (not retryable) when the depot
 * lacks a file the release names (nothing is written anywhere); `canceled`; `DeployError`
 * (`deploy-failed`, `deployment` = the first failing target, message naming it and the store's
 * reason, never a secret; `results` = every target's result) when any target failed — a failed
 * target keeps its previous release.json.
 */
export async function deployRelease(options: DeployOptions): Promise<TargetResult[]> {
  const { release, depot, targets, signal } = options;
  throwIfAborted(signal);
  const files = await collectFiles(release, depot);
  const nonPointers = files.filter((f) => !isPointer(f.key));
  const pointers = files.filter((f) => isPointer(f.key));
  const releaseBody = serializeRelease(release);
  const releaseKey = releasePath(release);
  const writeRelease = options.writeRelease !== false;
  const perTarget = files.length + (writeRelease ? 1 : 0);
  const done = new Array<number>(targets.length).fill(0);
  const report = (i: number): void => {
    done[i] += 1;
    const total = perTarget * Math.max(1, targets.length);
    options.onProgress?.({
      deployment: targets[i].deployment,
      doneFiles: done[i],
      totalFiles: perTarget,
      fraction: done.reduce((a, b) => a + b, 0) / total,
    });
  };

  const results = await Promise.all(
    targets.map(async (target, i): Promise<TargetResult> => {
      const result: TargetResult = { deployment: target.deployment, ok: false, filesCopied: 0, filesSkipped: 0, bytesCopied: 0, releaseWritten: false };
      try {
        await forEachLimited(nonPointers, options.concurrency ?? COPY_CONCURRENCY, async (f) => {
          await copyOne(target, depot, f, result, signal);
          report(i);
        });
        for (const f of pointers) {
          await copyOne(target, depot, f, result, signal);
          report(i);
        }
        throwIfAborted(signal);
        if (writeRelease) {
          await target.origin.store.put(releaseKey, releaseBody, {
            contentType: 'application/json',
            expectedSizeBytes: releaseBody.length,
            ...(signal ? { signal } : {}),
          });
          result.releaseWritten = true;
          report(i);
        }
        result.ok = true;
      } catch (err) {
        if (signal?.aborted) result.error = canceledError(signal);
        else result.error = targetError(target, err, 'publishing failed');
      }
      return result;
    }),
  );
  if (signal?.aborted) throw canceledError(signal);
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    const first = failed[0];
    const others = failed.length > 1 ? ` (and ${failed.length - 1} more deployment${failed.length > 2 ? 's' : ''})` : '';
    throw new DeployError(`${first.error?.message ?? `deployment ${first.deployment} failed`}${others}`, { deployment: first.deployment, cause: first.error }, results);
  }
  return results;
}

/**
 * The release.json an origin (or the depot, as an origin) currently publishes for an app, or null
 * when it has none — the `previous` of `planCleanup`. Errors: the store's (StorageError) when it
 * cannot be read; ReleaseFormatError when the document is invalid; a document over 1 MiB is refused.
 */
export async function readPublishedRelease(store: BlobStore, orgName: string, appName: string): Promise<ReleaseDocument | null> {
  const key = releasePath({ orgName, appName });
  const head = await store.head(key);
  if (head === null) return null;
  if (head.sizeBytes > 1 << 20) throw new Error(`${key} is larger than 1 MiB`);
  const chunks: Buffer[] = [];
  for await (const c of await openRead(store, key)) chunks.push(c as Buffer);
  return parseRelease(Buffer.concat(chunks));
}

export interface RemovalResult {
  deployment: string;
  ok: boolean;
  /** Objects deleted on this target. */
  deleted: number;
  error?: StepError;
}

/**
 * Deletes `prefixes` (from `planCleanup`, relative to the origin prefix) on every target — call it
 * once the plan's `notBefore` has passed. Only folder prefixes under `dxf/` or `pat/` are accepted
 * (anything else is a programming error: TypeError, nothing deleted). Deleting what is already gone
 * is not an error, so it is safe to run again. Targets are independent; when any failed, throws
 * `DeployError` naming the first, after trying all.
 */
export async function removeExpired(targets: DeployTarget[], prefixes: string[], signal?: AbortSignal): Promise<RemovalResult[]> {
  for (const p of prefixes) {
    if (!/^(dxf|pat)\/[^/]+\/[^/]+\/.+\/$/.test(p) || p.split('/').some((s) => s === '.' || s === '..')) {
      throw new TypeError(`removeExpired: refusing prefix ${JSON.stringify(p)}`);
    }
  }
  const results = await Promise.all(
    targets.map(async (target): Promise<RemovalResult> => {
      const r: RemovalResult = { deployment: target.deployment, ok: false, deleted: 0 };
      try {
        for (const p of prefixes) {
          throwIfAborted(signal);
          r.deleted += await target.origin.store.deletePrefix(p);
        }
        r.ok = true;
      } catch (err) {
        r.error = err instanceof StepError ? err : targetError(target, err, 'removing expired files failed');
      }
      return r;
    }),
  );
  throwIfAborted(signal);
  const failed = results.find((r) => !r.ok);
  if (failed) {
    throw new DeployError(failed.error?.message ?? `deployment ${failed.deployment} failed`, { deployment: failed.deployment, cause: failed.error }, []);
  }
  return results;
}

/** Every file the release needs, from the depot listing; refuses a release whose files are missing. */
async function collectFiles(release: ReleaseDocument, depot: DepotSource): Promise<SourceFile[]> {
  const folders = [
    { path: release.image.path, required: [IMAGE_JSON_NAME, release.image.manifest] },
    ...release.patches.map((p) => ({ path: p.path, required: [PATCH_POINTER_NAME] })),
  ];
  const out: SourceFile[] = [];
  for (const folder of folders) {
    const srcPrefix = joinKey(depot.prefix, folder.path);
    const found: SourceFile[] = [];
    try {
      for await (const obj of depot.store.list(srcPrefix)) found.push({ key: folder.path + obj.key.slice(srcPrefix.length), sizeBytes: obj.sizeBytes });
    } catch (err) {
      throw new StepError('storage-failed', `reading the depot failed (${codeOf(err) ?? 'error'})`, { cause: err });
    }
    const names = new Set(found.map((f) => f.key.slice(folder.path.length)));
    const missing = folder.required.filter((n) => !names.has(n));
    if (missing.length > 0) {
      throw new StepError('storage-failed', `the depot lacks ${folder.path}${missing[0]}: the release cannot be published`, { retryable: false });
    }
    out.push(...found);
  }
  return out;
}

async function copyOne(target: DeployTarget, depot: DepotSource, f: SourceFile, result: TargetResult, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal);
  const store = target.origin.store;
  // Pointers are rewritten every time: same size does not prove same content for them.
  if (!isPointer(f.key)) {
    const existing = await store.head(f.key);
    if (existing && existing.sizeBytes === f.sizeBytes) {
      result.filesSkipped += 1;
      return;
    }
  }
  const depotKey = joinKey(depot.prefix, f.key);
  const options = { expectedSizeBytes: f.sizeBytes, ...(signal ? { signal } : {}) };
  // A depot in a folder hands its file over (an fs origin on the same file system links it);
  // published files are immutable, so a link is as good as a copy. Otherwise: streamed.
  const local = depot.store.localFile(depotKey);
  if (local !== null && !isPointer(f.key)) {
    // A depot file that is gone is the depot's failure, not the origin's: checked first.
    const present = await depot.store.head(depotKey).catch(() => null);
    if (present === null) throw new StepError('storage-failed', `reading ${f.key} from the depot failed (not-found)`);
    await store.putFile(f.key, local, options);
  } else {
    let body;
    try {
      body = await openRead(depot.store, depotKey);
    } catch (err) {
      throw new StepError('storage-failed', `reading ${f.key} from the depot failed (${codeOf(err) ?? 'error'})`, { cause: err });
    }
    await store.put(f.key, body, options);
  }
  result.filesCopied += 1;
  result.bytesCopied += f.sizeBytes;
}

function isPointer(key: string): boolean {
  const name = key.slice(key.lastIndexOf('/') + 1);
  return name === IMAGE_JSON_NAME || name === PATCH_POINTER_NAME;
}

/** The error of one target; StorageError messages are secret-free by contract (storage-error.ts). */
function targetError(target: DeployTarget, err: unknown, what: string): StepError {
  if (err instanceof StepError && err.code === 'storage-failed') {
    return new StepError('deploy-failed', `deployment ${target.deployment}: ${err.message}`, { deployment: target.deployment, cause: err, retryable: err.retryable });
  }
  const code = codeOf(err);
  const reason = err instanceof Error && err.name === 'StorageError' ? err.message : (code ?? 'unexpected error');
  return new StepError('deploy-failed', `deployment ${target.deployment}: ${what}: ${reason}`, {
    deployment: target.deployment,
    cause: err,
  });
}

function codeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}
