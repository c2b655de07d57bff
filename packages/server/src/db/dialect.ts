import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { DatabaseConfig } from '../config/config.js';
import { PG_CAPABILITIES, SQLITE_CAPABILITIES, type DbCapabilities } from './capabilities.js';
import type { Database } from './database.js';

export interface Db {
  db: Kysely<Database>;
  capabilities: DbCapabilities;
  /** PostgreSQL: the schema every table lives in (search_path); undefined on SQLite. */
  schema?: string;
  /** Closes every connection; idempotent. */
  close(): Promise<void>;
}

const PG_INT8 = 20;
const PG_NUMERIC = 1700;

/**
 * Opens the metadata database. SQLite: WAL, 5 s busy timeout, foreign keys ON (the folder of the
 * file is created). PostgreSQL: int8 read as JS numbers (all our integers are < 2^53); with
 * `schema`, the schema is created if absent and used as search_path for every connection.
 */
export async function createDb(config: DatabaseConfig): Promise<Db> {
  if (config.kind === 'sqlite') {
    fs.mkdirSync(path.dirname(config.file), { recursive: true });
    const database = new SQLite(config.file, { timeout: 5000 });
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('foreign_keys = ON');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
    let closed = false;
    return {
      db,
      capabilities: SQLITE_CAPABILITIES,
      close: async () => {
        if (closed) return;
        closed = true;
        await db.destroy();
      },
    };
  }
  const types = {
    getTypeParser: (oid: number, format?: any) =>
      oid === PG_INT8 || oid === PG_NUMERIC ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format),
  };
  if (config.schema) {
    const client = new pg.Client({ connectionString: config.url });
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${config.schema}"`);
    } finally {
      await client.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: config.url,
    max: 10,
    types: types as any,
    ...(config.schema ? { options: `-c search_path="${config.schema}"` } : {}),
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  let closed = false;
  return {
    db,
    capabilities: PG_CAPABILITIES,
    schema: config.schema ?? 'public',
    close: async () => {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}

/** Cheap liveness query for /srv/v1/health. */
export async function pingDb(db: Kysely<Database>): Promise<void> {
  await sql`select 1`.execute(db);
}
