/**
 * The server's probes (api.md §3): readiness for /srv/v1/health (the database is pinged, then each
 * readiness check runs), and the self checks `hello` with maintenance runs — write, read back and
 * delete a probe object in the blob store and in each deployment's origin.
 */
import type { Kysely } from 'kysely';
import type { Database } from './db/database.js';
import { pingDb } from './db/dialect.js';
import type { DeploymentRow } from './db/app-tables.js';
import { allDeploymentsWithOrg } from './db/repositories/deployment.repository.js';
import type { HealthReport } from './http/routes/srv.routes.js';
import type { Origin } from './publish/origin.js';
import type { SelfCheck } from './task-handlers/hello.js';
import type { Worker } from './queue/worker.js';
import type { BlobStore } from './storage/blob-store.js';
import { selfCheck } from './storage/self-check.js';

/** A readiness probe reported by /srv/v1/health (e.g. the blob store). Throws when not ready. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

/** Round trip through the blob store; throws the self check's message when it fails. */
export function blobStoreProbe(blobStore: BlobStore): () => Promise<void> {
  return async () => {
    const r = await selfCheck(blobStore);
    if (!r.ok) throw new Error(r.message);
  };
}

/** The blob store's check, then one per deployment of the installation, listed anew at each run. */
export function deploymentSelfChecks(
  db: Kysely<Database>,
  blobStoreCheck: () => Promise<void>,
  openOrigin: (row: DeploymentRow) => Origin,
): () => Promise<SelfCheck[]> {
  return async () => {
    const checks: SelfCheck[] = [{ name: 'blob-store', run: blobStoreCheck }];
    for (const row of await allDeploymentsWithOrg(db)) {
      checks.push({
        name: `deployment ${row.org_name}/${row.name}`,
        async run() {
          const origin = openOrigin(row);
          try {
            const r = await selfCheck(origin.store);
            if (!r.ok) throw new Error(r.message);
          } finally {
            await origin.close().catch(() => undefined);
          }
        },
      });
    }
    return checks;
  };
}

export interface HealthOptions {
  db: Kysely<Database>;
  readinessChecks: readonly ReadinessCheck[];
  /** The node's worker, undefined when it runs none (read at each report: the worker starts after the app is built). */
  worker: () => Worker | undefined;
  concurrency: number;
}

/** Ready: database reachable, every readiness check passes, and the worker alive when this node runs one. */
export function healthReporter(opts: HealthOptions): () => Promise<HealthReport> {
  return async () => {
    let database: 'ok' | 'error' = 'ok';
    try {
      await pingDb(opts.db);
    } catch {
      database = 'error';
    }
    const checks = await Promise.all(
      opts.readinessChecks.map(async (c) => {
        try {
          await c.check();
          return { name: c.name, ok: true };
        } catch (e) {
          return { name: c.name, ok: false, message: e instanceof Error ? e.message : String(e) };
        }
      }),
    );
    const worker = opts.worker();
    const workers = { enabled: worker !== undefined, alive: worker?.alive ?? false, concurrency: worker ? opts.concurrency : 0 };
    const ready = database === 'ok' && checks.every((c) => c.ok) && (!workers.enabled || workers.alive);
    return { ready, database, workers, checks };
  };
}
