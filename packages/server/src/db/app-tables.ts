import type { Insertable, Selectable, Updateable } from 'kysely';

/**
 * Tables of migration 0003 (apps, deployments and what the import pipeline records), in the
 * portable representation of `database.ts`: text ids, integer milliseconds, 0/1 booleans, JSON as text.
 */

export type DeploymentType = 's3' | 'fs';
export type DeploymentStatus = 'ok' | 'error';

export interface DeploymentsTable {
  id: string;
  org_id: string;
  name: string;
  label: string;
  type: DeploymentType;
  /** Relative path without leading/trailing `/`; null = the origin's root. */
  origin_prefix: string | null;
  s3_endpoint: string | null;
  s3_region: string | null;
  s3_bucket: string | null;
  s3_access_key_id: string | null;
  /** SecretBox-sealed, context `deploymentSecretContext(id, 's3.secretAccessKey')`. Never leaves the server. */
  s3_secret_sealed: string | null;
  s3_force_path_style: number | null;
  fs_path: string | null;
  /** `token` or null (downloads need no token). */
  download_auth_type: string | null;
  /** SecretBox-sealed, context `deploymentSecretContext(id, 'downloadAuth.key')`. */
  download_auth_key_sealed: string | null;
  /** Last known health: set by a verify and by publishing to it. */
  status: DeploymentStatus;
  message: string;
  /** When status/message were last set from a real check or publish; null = never. */
  checked_ms: number | null;
  created_ms: number;
  updated_ms: number;
}

export interface AppsTable {
  id: string;
  org_id: string;
  name: string;
  label: string;
  max_builds: number;
  /** Newest published build; null until the first import is published. */
  i_cur_build: number | null;
  dxf_name: string | null;
  /** Id the next imported build gets (1, 2, 3...). */
  next_build_id: number;
  processing: number;
  exporting: number;
  locked: number;
  /** JSON `{ task, type: 'deploy', message, since }` while the app is in error state. */
  error: string | null;
  /** Bytes of the app's images and patches in the depot (maintained by the pipeline). */
  size_bytes: number;
  /** Bytes of native builds (tars) held in the blob store while they are imported. */
  uploads_bytes: number;
  /** Bytes of play traces kept for the app. */
  traces_bytes: number;
  created_ms: number;
  updated_ms: number;
}

/** An app's explicit deployment list; no rows = every deployment of the org. */
export interface AppDeploymentsTable {
  app_id: string;
  deployment_id: string;
}

export type BuildState = 'importing' | 'ready' | 'failed';

export interface BuildsTable {
  app_id: string;
  build_id: number;
  build_name: string | null;
  /** Native size of the build (the files in the tar). */
  size_bytes: number;
  /** Bytes of the build's stored image in the depot. */
  image_bytes: number;
  files: number;
  dxf_name: string | null;
  state: BuildState;
  created_ms: number;
}

export interface PatchesTable {
  app_id: string;
  from_build_id: number;
  to_build_id: number;
  size_bytes: number;
  created_ms: number;
}

/** Bytes of an app currently published on a deployment (upserted by the deploy step). */
export interface AppPublicationsTable {
  app_id: string;
  deployment_id: string;
  size_bytes: number;
  updated_ms: number;
}

export interface AppTables {
  deployments: DeploymentsTable;
  apps: AppsTable;
  app_deployments: AppDeploymentsTable;
  builds: BuildsTable;
  patches: PatchesTable;
  app_publications: AppPublicationsTable;
}

export type DeploymentRow = Selectable<DeploymentsTable>;
export type DeploymentUpdate = Updateable<DeploymentsTable>;
export type AppRow = Selectable<AppsTable>;
export type AppUpdate = Updateable<AppsTable>;
export type BuildRow = Selectable<BuildsTable>;
export type NewBuild = Insertable<BuildsTable>;
export type PatchRow = Selectable<PatchesTable>;
