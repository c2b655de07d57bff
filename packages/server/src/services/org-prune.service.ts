/**
 * Deleting an org's files when the org is deleted with ?prune=true (the ServiceHooks OrgService
 * calls): uploads, traces, the depot's published layout, mkraw's image cache on this node and the
 * org's published files on each of its deployments. Storage only; the records are OrgService's.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { allDeploymentsOfOrg } from '../db/repositories/deployment.repository.js';
import { pendingUploadsOfOrg } from '../db/repositories/import.repository.js';
import type { SecretBox } from '../domain/secret-box.js';
import { orgIncomingPrefix, type S3ImportScope } from '../pipeline/s3-import-scope.js';
import { dropImageCache } from '../pipeline/work-sweep.js';
import { orgImportsPrefix, orgPrefixes } from '../publish/layout.js';
import { createOrigin, type Origin, type OriginSettings, type OriginTuning } from '../publish/origin.js';
import type { BlobStore } from '../storage/blob-store.js';
import { discardUpload } from '../storage/part-writer.js';
import { openDeploymentSettings } from './deployment.service.js';
import { orgTracesPrefix } from './trace.service.js';

export interface OrgPruneDeps {
  db: Kysely<Database>;
  blobStore: BlobStore;
  /** The installation's published layout (the depot) as an origin. */
  depot: Origin;
  /** mkraw's local work folder, which holds this node's image cache by org and app. */
  mkrawWorkDir: string;
  /** Opens the deployments' sealed settings. */
  secrets: SecretBox;
  originTuning: OriginTuning;
  /** Set in cluster mode: the org's s3:// import prefix is deleted too. */
  s3ImportScope?: S3ImportScope;
  log: Logger;
}

export class OrgPruneService {
  constructor(private readonly deps: OrgPruneDeps) {}

  /**
   * The org's image cache on this node and its published layout in the depot. Deployments' copies
   * are not reached (their records are gone when this runs): that is what prepareOrgPrune is for.
   * Idempotent.
   */
  async pruneOrgFiles(orgName: string): Promise<void> {
    await dropImageCache(this.deps.mkrawWorkDir, orgName).catch(() => undefined);
    for (const prefix of orgPrefixes(orgName)) await this.deps.depot.store.deletePrefix(prefix);
  }

  /**
   * Reads what cannot be read once the org's records are deleted (its deployments' settings, its
   * uploads in progress) and returns the deletion to run after them. A deployment whose settings
   * cannot be opened is skipped.
   */
  async prepareOrgPrune(orgId: string, orgName: string): Promise<() => Promise<void>> {
    const deployments = (await allDeploymentsOfOrg(this.deps.db, orgId)).flatMap((row) => {
      try {
        return [{ name: row.name, settings: openDeploymentSettings(row, this.deps.secrets) }];
      } catch {
        return [];
      }
    });
    const uploads = await pendingUploadsOfOrg(this.deps.db, orgId);
    return async () => {
      const { blobStore } = this.deps;
      await this.pruneOrgFiles(orgName);
      for (const u of uploads) await discardUpload(blobStore, u.tar_key, u.upload_id);
      await blobStore.deletePrefix(orgImportsPrefix(orgId));
      // The org's s3:// import prefix: a later org of the same name must not find these builds.
      if (this.deps.s3ImportScope) await blobStore.deletePrefix(orgIncomingPrefix(orgName));
      await blobStore.deletePrefix(orgTracesPrefix(orgId));
      for (const d of deployments) await this.pruneDeployment(orgName, d);
    };
  }

  /** A deployment that fails is logged and left: the org is gone either way. */
  private async pruneDeployment(orgName: string, d: { name: string; settings: OriginSettings }): Promise<void> {
    let origin: Origin | undefined;
    try {
      origin = createOrigin(d.settings, this.deps.originTuning);
      for (const prefix of orgPrefixes(orgName)) await origin.store.deletePrefix(prefix);
    } catch (err) {
      this.deps.log.warn({ err, orgName, deployment: d.name }, 'pruning a deployment failed');
    } finally {
      await origin?.close().catch(() => undefined);
    }
  }
}
