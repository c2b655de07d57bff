/**
 * What the database can do, decided once from the dialect. Business code and the queue SQL check
 * these named flags, never the dialect itself.
 */
export interface DbCapabilities {
  dialect: 'sqlite' | 'pg';
  /** `FOR UPDATE SKIP LOCKED` is available: many processes may claim tasks concurrently. */
  skipLocked: boolean;
  /** Only one process may use the database (embedded SQLite file). */
  singleProcess: boolean;
  /**
   * `SELECT … FOR UPDATE` row locks exist. Without them (SQLite) transactions are already
   * serialized: one connection, one writer.
   */
  rowLocks: boolean;
}

export const SQLITE_CAPABILITIES: DbCapabilities = Object.freeze({ dialect: 'sqlite', skipLocked: false, singleProcess: true, rowLocks: false });
export const PG_CAPABILITIES: DbCapabilities = Object.freeze({ dialect: 'pg', skipLocked: true, singleProcess: false, rowLocks: true });
