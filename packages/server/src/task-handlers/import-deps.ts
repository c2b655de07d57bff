import type { Kysely } from 'kysely';
import type { DeploymentRow } from '../db/app-tables.js';
import type { Database } from '../db/database.js';
import type { Clock } from '../domain/clock.js';
import type { S3ImportScope } from '../pipeline/s3-import-scope.js';
import { StepError } from '../pipeline/errors.js';
import type { Origin } from '../publish/origin.js';
import type { TaskQueue } from '../queue/task-queue.js';
import { PermanentTaskError, type TaskFailure } from '../queue/worker.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { EarlyBuilds } from '../pipeline/early-build.js';

/** Everything the import handlers (dltar, mkraw, deploy, cleanup) need; built once in server.ts. */
export interface ImportDeps {
  db: Kysely<Database>;
  clock: Clock;
  /** The installation's blob store: tars under `imports/`, the depot under `depotPrefix`. */
  blobStore: BlobStore;
  /** Prefix of the depot (the publication layout served at /cdn/*) inside `blobStore`, without `/`. */
  depotPrefix: string;
  /** Local scratch folder and image cache of mkraw. */
  workDir: string;
  /** Removes orphaned scratch folders and caches of deleted apps from `workDir` (after each mkraw). Never throws. */
  sweepWork?: () => Promise<void>;
  /** Largest native build accepted (bytes). */
  maxUploadBytes: number;
  /**
   * Decompression-bomb limits of mkraw: the expanded build's total file bytes and its entry count
   * (ROCKIT_MAX_BUILD_BYTES / ROCKIT_MAX_BUILD_FILES); absent = the engine's defaults.
   */
  buildLimits?: { maxTotalBytes: number; maxFiles: number };
  /** Delay before files a new release no longer needs are removed (api.md §7.3). */
  gracePeriodSeconds: number;
  /** SSRF guard for download URLs; absent = any address. */
  addressPolicy?: (address: string, family: 4 | 6) => boolean;
  /** Opens a deployment's origin (secrets opened with the installation key). Throws when it cannot. */
  openDeployment(row: DeploymentRow): Origin;
  /** Cluster mode: the blob store's bucket and prefix, where each org's `incoming/<orgName>/` s3:// imports are read; absent = s3:// refused. */
  s3ImportScope?: S3ImportScope;
  /** Engine codec threads for mkraw (default: all cores). */
  threads?: number;
  /** The task queue: follow-up tasks go there, and wake the local worker once committed. */
  queue: TaskQueue;
  /** Images built while their tars were uploaded to this process (mkraw takes them); absent = none. */
  earlyBuilds?: EarlyBuilds;
}

/**
 * A deploy failure ends the task at once (api.md §7.2: the app goes to error state and is locked
 * until someone fixes the deployment and retries); storage trouble of the depot keeps retrying.
 */
export class FinalDeployFailure extends Error implements TaskFailure {
  readonly retryable = false;
  constructor(readonly step: StepError) {
    super(step.message);
    this.name = 'FinalDeployFailure';
  }
  toTaskError(): object {
    return { ...this.step.toTaskError(), retryable: false };
  }
}

/**
 * Whether this failed attempt is the task's last one (the worker will not retry it): attempts are
 * used up, or the error says no retry can help (a non-retryable StepError, a FinalDeployFailure, a
 * PermanentTaskError). Decided on the error classes the worker decides on, never on names.
 */
export function isFinalAttempt(task: { attempts: number; max_attempts: number }, err: unknown): boolean {
  if (task.attempts >= task.max_attempts) return true;
  if (err instanceof StepError) return !err.retryable;
  return err instanceof FinalDeployFailure || err instanceof PermanentTaskError;
}
