/**
 * What the app and deployment services do to files on origins: verify an origin, remove an app's
 * published files, remove everything an org published on a deployment. Injected into the
 * services (tests and other deployments of the server may replace it); `createOriginFileOps` is
 * the real one.
 */
import { stat } from 'node:fs/promises';
import { dropImageCache } from '../pipeline/work-sweep.js';
import { appPrefixes } from '../publish/layout.js';
import { createOrigin, type Origin, type OriginSettings, type OriginTuning } from '../publish/origin.js';
import { removePrefix } from '../publish/publisher.js';
import { selfCheck, type SelfCheckResult } from '../storage/self-check.js';
import { isStorageError } from '../storage/storage-error.js';

/** A deployment as the file operations see it: its name (for reports) and decrypted settings. */
export interface NamedOrigin {
  name: string;
  settings: OriginSettings;
}

/** Outcome of a removal. Failures never abort the others; messages never contain secrets. */
export interface CleanupReport {
  ok: boolean;
  /** `origin` is `depot` or a deployment name. */
  failures: Array<{ origin: string; message: string }>;
}

export interface OriginFileOps {
  /**
   * Removes every published file of the app (`dxf/{org}/{app}/` and `pat/{org}/{app}/`) in the
   * depot and on each given deployment. Idempotent; never throws for a storage failure.
   */
  removeAppFiles(orgName: string, appName: string, deployments: NamedOrigin[]): Promise<CleanupReport>;
  /** Removes the published files of each of these apps of the org from one deployment. Idempotent; never throws. */
  removeDeploymentFiles(orgName: string, deployment: NamedOrigin, appNames: string[]): Promise<CleanupReport>;
  /**
   * Round trip through the origin (write, read, range read, delete a probe). An `fs` origin must
   * be an existing folder (a check never creates it). Never throws.
   */
  checkOrigin(settings: OriginSettings): Promise<SelfCheckResult>;
}

export interface OriginFileOpsOptions {
  /** The installation's own store as an origin; omitted = no depot to clean (yet). */
  depot?: Origin;
  tuning?: OriginTuning;
}

const reason = (err: unknown): string => (isStorageError(err) ? err.message : 'unexpected error');

export function createOriginFileOps(options: OriginFileOpsOptions = {}): OriginFileOps {
  const removeFrom = async (origin: Origin, prefixes: string[]): Promise<void> => {
    for (const prefix of prefixes) await removePrefix(origin, prefix);
  };

  /** Opens the deployment's origin, runs `fn`, closes it; a failure is recorded under the deployment's name. */
  const withOrigin = async (d: NamedOrigin, report: CleanupReport, fn: (o: Origin) => Promise<void>): Promise<void> => {
    let origin: Origin | undefined;
    try {
      origin = createOrigin(d.settings, options.tuning);
      await fn(origin);
    } catch (err) {
      report.ok = false;
      report.failures.push({ origin: d.name, message: reason(err) });
    } finally {
      await origin?.close().catch(() => undefined);
    }
  };

  return {
    async removeAppFiles(orgName, appName, deployments) {
      const prefixes = appPrefixes(orgName, appName);
      const report: CleanupReport = { ok: true, failures: [] };
      if (options.depot) {
        try {
          await removeFrom(options.depot, prefixes);
        } catch (err) {
          report.ok = false;
          report.failures.push({ origin: 'depot', message: reason(err) });
        }
      }
      for (const d of deployments) await withOrigin(d, report, (o) => removeFrom(o, prefixes));
      return report;
    },

    async removeDeploymentFiles(orgName, deployment, appNames) {
      const report: CleanupReport = { ok: true, failures: [] };
      if (appNames.length === 0) return report;
      await withOrigin(deployment, report, async (o) => {
        for (const app of appNames) await removeFrom(o, appPrefixes(orgName, app));
      });
      return report;
    },

    async checkOrigin(settings) {
      let origin: Origin;
      try {
        origin = createOrigin(settings, options.tuning);
      } catch (err) {
        return { ok: false, message: reason(err), ms: 0, ...(isStorageError(err) ? { code: err.code } : {}) };
      }
      try {
        if (settings.type === 'fs' && settings.fs) {
          const isFolder = await stat(settings.fs.path).then((s) => s.isDirectory(), () => false);
          if (!isFolder) return { ok: false, message: `fs.path ${settings.fs.path} is not an existing folder`, ms: 0, code: 'not-found' };
        }
        return await selfCheck(origin.store);
      } finally {
        await origin.close().catch(() => undefined);
      }
    },
  };
}

/**
 * `files`, plus: deleting an app drops this node's image cache of it (other nodes drop theirs at
 * their next work-folder sweep).
 */
export function withImageCacheDrop(files: OriginFileOps, mkrawWorkDir: string): OriginFileOps {
  return {
    removeAppFiles: async (orgName, appName, deployments) => {
      const report = await files.removeAppFiles(orgName, appName, deployments);
      await dropImageCache(mkrawWorkDir, orgName, appName).catch(() => undefined);
      return report;
    },
    removeDeploymentFiles: (orgName, deployment, appNames) => files.removeDeploymentFiles(orgName, deployment, appNames),
    checkOrigin: (settings) => files.checkOrigin(settings),
  };
}
