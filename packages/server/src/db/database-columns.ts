import type { Database } from './database.js';

/**
 * Every table of the schema and its columns, as the migrations leave them. `satisfies ColumnsOf<Database>`
 * plus `NONE_MISSING` make a table or column that is in one of `Database` and this list but not the other a
 * compile error; db/migrations.test.ts checks this list against the migrated schema on every dialect.
 * Together: the `Database` type and the migrations cannot drift apart.
 */
export type ColumnsOf<DB> = { readonly [T in keyof DB]: ReadonlyArray<keyof DB[T] & string> };

/** Columns of a table of `DB` that `C` does not list (never when none is missing). */
export type MissingColumns<DB, C extends ColumnsOf<DB>> = { [T in keyof DB]: Exclude<keyof DB[T] & string, C[T][number]> }[keyof DB];

export const DATABASE_COLUMNS = {
  orgs: ['id', 'name', 'label', 'created_ms', 'updated_ms'],
  roles: ['id', 'org_id', 'name', 'label', 'permissions', 'builtin', 'created_ms', 'updated_ms'],
  users: [
    'id', 'org_id', 'username', 'type', 'email', 'firstname', 'surname', 'title', 'label', 'password_hash', 'disabled', 'created_ms',
    'updated_ms', 'last_login_ms',
  ],
  user_roles: ['user_id', 'role_id'],
  sessions: ['id', 'token_hash', 'user_id', 'created_ms', 'expires_ms', 'revoked'],
  auth_tokens: ['id', 'token_hash', 'session_id', 'created_ms', 'expires_ms'],
  api_keys: ['id', 'user_id', 'key_hash', 'created_ms', 'revoked_ms'],
  tasks: [
    'name', 'type', 'status', 'org_id', 'app_name', 'build_id', 'queue_key', 'payload', 'result', 'error', 'warnings', 'progress',
    'attempts', 'max_attempts', 'retry_policy', 'run_after_ms', 'lease_owner', 'lease_expires_ms', 'created_ms', 'started_ms', 'ended_ms',
    'updated_ms',
  ],
  login_failures: ['key', 'failures', 'window_ends_ms'],
  deployments: [
    'id', 'org_id', 'name', 'label', 'type', 'origin_prefix', 's3_endpoint', 's3_region', 's3_bucket', 's3_access_key_id',
    's3_secret_sealed', 's3_force_path_style', 'fs_path', 'download_auth_type', 'download_auth_key_sealed', 'status', 'message',
    'checked_ms', 'created_ms', 'updated_ms',
  ],
  apps: [
    'id', 'org_id', 'name', 'label', 'max_builds', 'i_cur_build', 'dxf_name', 'next_build_id', 'processing', 'exporting', 'locked',
    'error', 'size_bytes', 'uploads_bytes', 'traces_bytes', 'created_ms', 'updated_ms',
  ],
  app_deployments: ['app_id', 'deployment_id'],
  builds: ['app_id', 'build_id', 'build_name', 'size_bytes', 'image_bytes', 'files', 'dxf_name', 'state', 'created_ms'],
  patches: ['app_id', 'from_build_id', 'to_build_id', 'size_bytes', 'created_ms'],
  app_publications: ['app_id', 'deployment_id', 'size_bytes', 'updated_ms'],
  imports: [
    'task_name', 'org_id', 'app_id', 'source', 'url', 'size_bytes', 'sha256', 'build_name', 'upload_token_hash', 'upload_state',
    'expires_ms', 'tar_key', 'build_id', 'dxf_name', 'manifest_file', 'mkraw_task', 'deploy_task', 'created_ms', 'upload_id',
    'upload_parts', 'upload_part_bytes', 'upload_received_bytes', 'upload_total_bytes', 'upload_writer', 'upload_writer_until_ms',
    'upload_sha256', 'upload_compression',
  ],
  subscriptions: ['id', 'org_id', 'name', 'type', 'url_sealed', 'url_display', 'secret_sealed', 'events', 'created_ms', 'updated_ms'],
  subscription_deliveries: [
    'id', 'subscription_id', 'task_name', 'event', 'app_name', 'attempt', 'ok', 'http_status', 'error', 'ms', 'created_ms',
  ],
  download_keys: ['id', 'org_id', 'app_id', 'label', 'key_hash', 'created_ms', 'last_used_ms'],
  traces: [
    'id', 'org_id', 'app_id', 'build_id', 'dxf_name', 'session_id', 'first_session', 'records', 'bytes_read', 'duration_ms',
    'coverage', 'blob_key', 'size_bytes', 'created_ms',
  ],
  trainings: [
    'app_id', 'org_id', 'n_traces_reliable', 'auto', 'traces_at_last_run', 'last_processed_ms', 'next_training', 'quality',
    'created_ms', 'updated_ms',
  ],
} as const satisfies ColumnsOf<Database>;

/** Compiles only while DATABASE_COLUMNS names every column of `Database`. */
export const NONE_MISSING: [MissingColumns<Database, typeof DATABASE_COLUMNS>] extends [never] ? true : never = true;
