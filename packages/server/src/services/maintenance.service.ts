/**
 * Clean-ups of what no request deletes: sessions long expired, ended login-throttle windows,
 * multipart uploads nobody will finish, and mkraw's work folders of dead conversions and deleted
 * apps. Each logs its own failure and never throws. The Scheduler (scheduler.ts) runs
 * `housekeep`; the work-folder sweep runs at start and from mkraw.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { liveOrgsAndApps } from '../db/repositories/app.repository.js';
import { purgeExpiredSessions } from '../db/repositories/credential.repository.js';
import { purgeEndedFailures } from '../db/repositories/login-throttle.repository.js';
import type { Clock } from '../domain/clock.js';
import { sweepWorkFolder } from '../pipeline/work-sweep.js';

/** Until a week past expiry an expired token still answers token-expired rather than token-invalid. */
export const SESSION_RETENTION_MS = 7 * 24 * 3600 * 1000;
/** Added to an upload URL's lifetime before its multipart upload counts as abandoned. */
export const ORPHAN_UPLOAD_MARGIN_SECONDS = 3600;

export interface MaintenanceDeps {
  db: Kysely<Database>;
  clock: Clock;
  log: Logger;
  /** mkraw's local work folder (scratch folders of running conversions and the image cache). */
  mkrawWorkDir: string;
  /** How long an upload URL lives (config.imports.uploadExpirySeconds). */
  uploadExpirySeconds: number;
  /** Aborts multipart uploads started before then that no import uses (UploadService.sweepOrphans); returns how many. */
  sweepOrphanUploads(startedBeforeMs: number): Promise<number>;
}

export class MaintenanceService {
  constructor(private readonly deps: MaintenanceDeps) {}

  /** Removes work folders no running conversion holds and image caches of deleted orgs and apps. */
  async sweepWorkFolder(): Promise<void> {
    const { db, log, mkrawWorkDir } = this.deps;
    try {
      const { removed } = await sweepWorkFolder(mkrawWorkDir, () => liveOrgsAndApps(db));
      if (removed.length > 0) log.info({ removed }, 'removed orphaned work folders');
    } catch (err) {
      log.warn({ err }, 'sweeping the work folder failed');
    }
  }

  /** One round of the periodic purges; they run side by side and fail independently. */
  async housekeep(): Promise<void> {
    const { db, clock, log, uploadExpirySeconds } = this.deps;
    await Promise.all([
      purgeExpiredSessions(db, clock.now() - SESSION_RETENTION_MS).catch((err) => log.warn({ err }, 'session purge failed')),
      purgeEndedFailures(db, clock.now()).catch((err) => log.warn({ err }, 'login throttle purge failed')),
      // Multipart uploads nobody will finish: started longer ago than an upload URL lives (plus a margin).
      this.deps
        .sweepOrphanUploads(clock.now() - (uploadExpirySeconds + ORPHAN_UPLOAD_MARGIN_SECONDS) * 1000)
        .then((n) => n > 0 && log.info({ aborted: n }, 'aborted orphaned multipart uploads'))
        .catch((err) => log.warn({ err }, 'orphaned upload sweep failed')),
    ]);
  }
}
