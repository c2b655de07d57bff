import { Migrator, type Kysely, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';
import * as m0001 from './migrations/0001-accounts.js';
import * as m0002 from './migrations/0002-tasks.js';
import * as m0003 from './migrations/0003-apps-deployments.js';
import * as m0004 from './migrations/0004-imports.js';
import * as m0005 from './migrations/0005-subscriptions.js';
import * as m0006 from './migrations/0006-resumable-uploads.js';
import * as m0007 from './migrations/0007-login-throttle.js';
import * as m0010 from './migrations/0010-faststart-keys-traces.js';
import * as m0011 from './migrations/0011-trainings.js';
import * as m0012 from './migrations/0012-task-retry-policy.js';

/** Every migration, in order. Names are frozen; append only. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = Object.freeze({
  '0001-accounts': m0001,
  '0002-tasks': m0002,
  '0003-apps-deployments': m0003,
  '0004-imports': m0004,
  '0005-subscriptions': m0005,
  '0006-resumable-uploads': m0006,
  '0007-login-throttle': m0007,
  '0010-faststart-keys-traces': m0010,
  '0011-trainings': m0011,
  '0012-task-retry-policy': m0012,
});

class StaticMigrationProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return { ...MIGRATIONS };
  }
}

/**
 * Brings the schema to the latest migration. Throws the migration's error if one fails.
 * `schema` (PostgreSQL) pins Kysely's bookkeeping tables to our schema: without it Kysely's
 * existence check matches the tables of any schema in the database.
 */
export async function migrateToLatest(db: Kysely<any>, schema?: string): Promise<MigrationResultSet> {
  const migrator = new Migrator({ db, provider: new StaticMigrationProvider(), ...(schema ? { migrationTableSchema: schema } : {}) });
  const result = await migrator.migrateToLatest();
  if (result.error) throw result.error instanceof Error ? result.error : new Error(String(result.error));
  return result;
}
