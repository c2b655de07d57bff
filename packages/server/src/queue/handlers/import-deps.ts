import type { Kysely } from 'kysely';
import type { DeploymentRow } from '../../db/app-tables.js';
import type { Database } from '../../db/database.js';
import type { Clock } from '../../domain/clock.js';
import type { S3ImportScope } from '../../pipeline/s3-import-scope.js';
import type { Origin } from '../../publish/origin.js';
import type { BlobStore } from '../../storage/blob-store.js';

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
  /** Attempts of each follow-up task. */
  maxAttempts: number;
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
  /** Wakes the local worker after a follow-up task was enqueued. */
  poke(): void;
}

/** Tasks of one app's mkraw and deploy steps run one at a time, in order. */
export const appQueueKey = (appId: string): string => `app:${appId}`;

/** Where the tar of an import lives in the blob store (uploads and downloads alike). */

/** Whether this failed attempt is the task's last one (the worker will not retry it). */
export function isFinalAttempt(task: { attempts: number; max_attempts: number }, err: unknown): boolean {
  if (task.attempts >= task.max_attempts) return true;
  const retryable = (err as { retryable?: unknown } | null)?.retryable;
  if (typeof retryable === 'boolean' && typeof (err as { toTaskError?: unknown }).toTaskError === 'function') return !retryable;
  return (err as Error | null)?.name === 'PermanentTaskError';
}
