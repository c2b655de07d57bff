import type { Insertable, Selectable, Updateable } from 'kysely';
import type { AppTables } from './app-tables.js';
import type { FastStartTables } from './faststart-tables.js';
import type { ImportTables } from './import-tables.js';
import type { SubscriptionTables } from './subscription-tables.js';
import type { TrainingTables } from './training-tables.js';

/**
 * The database schema as Kysely sees it (after every migration). Portable representation so the
 * same queries run on SQLite and PostgreSQL: ids are app-generated text, times are integer
 * milliseconds (`*_ms`), booleans are 0/1 integers, JSON is text (parsed in repositories).
 */
export interface OrgsTable {
  id: string;
  name: string;
  label: string;
  created_ms: number;
  updated_ms: number;
}

export interface RolesTable {
  id: string;
  org_id: string;
  name: string;
  label: string;
  /** JSON object resource → bits, every resource present. */
  permissions: string;
  /** 1 for the org's Administrators role (immutable, undeletable). */
  builtin: number;
  created_ms: number;
  updated_ms: number;
}

export interface UsersTable {
  id: string;
  org_id: string;
  username: string;
  type: 'user' | 'machine';
  email: string | null;
  firstname: string | null;
  surname: string | null;
  title: string | null;
  label: string | null;
  /** scrypt hash; null for machine users (they authenticate with API keys only). */
  password_hash: string | null;
  disabled: number;
  created_ms: number;
  updated_ms: number;
  last_login_ms: number | null;
}

export interface UserRolesTable {
  user_id: string;
  role_id: string;
}

export interface SessionsTable {
  id: string;
  token_hash: string;
  user_id: string;
  created_ms: number;
  expires_ms: number;
  revoked: number;
}

export interface AuthTokensTable {
  id: string;
  token_hash: string;
  session_id: string;
  created_ms: number;
  expires_ms: number;
}

export interface ApiKeysTable {
  id: string;
  user_id: string;
  key_hash: string;
  created_ms: number;
  revoked_ms: number | null;
}

export type TaskStatus = 'submitted' | 'running' | 'succeeded' | 'failed' | 'expired' | 'canceled';

export interface TasksTable {
  name: string;
  type: string;
  status: TaskStatus;
  org_id: string | null;
  app_name: string | null;
  build_id: number | null;
  /** Tasks with the same key run one at a time in name (= submission) order, e.g. `org/app`. */
  queue_key: string | null;
  payload: string;
  result: string | null;
  error: string | null;
  warnings: string;
  progress: number;
  attempts: number;
  max_attempts: number;
  /** JSON `{baseMs, factor, maxMs, jitter}`: the backoff the task was enqueued with (migration 0012); null = its type's policy. */
  retry_policy: string | null;
  run_after_ms: number;
  lease_owner: string | null;
  lease_expires_ms: number | null;
  created_ms: number;
  started_ms: number | null;
  ended_ms: number | null;
  updated_ms: number;
}

/** Table of migration 0007: throttled attempts (logins, credential guesses) per key in fixed windows. */
export interface LoginFailuresTable {
  /** sha256 hex of the throttled thing ((org, username), a client address, or both): no names or addresses stored. */
  key: string;
  failures: number;
  window_ends_ms: number;
}

/**
 * Tables of migration 0003 (apps, deployments, builds, patches) are declared in app-tables.ts, the imports
 * table in import-tables.ts, 0005 (subscriptions) in subscription-tables.ts, 0010 (download keys, traces) in
 * faststart-tables.ts, 0011 (trainings) in training-tables.ts.
 */
export interface Database extends AppTables, ImportTables, SubscriptionTables, FastStartTables, TrainingTables {
  orgs: OrgsTable;
  roles: RolesTable;
  users: UsersTable;
  user_roles: UserRolesTable;
  sessions: SessionsTable;
  auth_tokens: AuthTokensTable;
  api_keys: ApiKeysTable;
  tasks: TasksTable;
  login_failures: LoginFailuresTable;
}

export type OrgRow = Selectable<OrgsTable>;
export type RoleRow = Selectable<RolesTable>;
export type UserRow = Selectable<UsersTable>;
export type TaskRow = Selectable<TasksTable>;
export type NewTask = Insertable<TasksTable>;
export type UserUpdate = Updateable<UsersTable>;
