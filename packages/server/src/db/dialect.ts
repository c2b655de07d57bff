import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import type { DatabaseIntrospector, DatabaseMetadata, LogEvent, SchemaMetadata, TableMetadata } from 'kysely';
import pg from 'pg';
import type { DatabaseConfig } from '../config/config.js';
import { PG_CAPABILITIES, SQLITE_CAPABILITIES, type DbCapabilities } from './capabilities.js';
import type { Database } from './database.js';

export interface DbOptions {
  /** Called with the SQL text of every statement run (tests count statements per request). */
  onQuery?: (sql: string) => void;
}

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
export async function createDb(config: DatabaseConfig, opts: DbOptions = {}): Promise<Db> {
  const onQuery = opts.onQuery;
  const log = onQuery ? { log: (e: LogEvent): void => { if (e.level === 'query') onQuery(e.query.sql); } } : {};
  if (config.kind === 'sqlite') {
    fs.mkdirSync(path.dirname(config.file), { recursive: true });
    const database = new SQLite(config.file, { timeout: 5000 });
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('foreign_keys = ON');
    cachePreparedStatements(database);
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }), ...log });
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
  const schema = config.schema ?? 'public';
  cachePgStatements(pool);
  const db = new Kysely<Database>({ dialect: new SchemaScopedPostgresDialect({ pool }, schema), ...log });
  let closed = false;
  return {
    db,
    capabilities: PG_CAPABILITIES,
    schema,
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

/**
 * Kysely's SQLite driver prepares every statement anew on each query; preparing costs several
 * times more than running our small indexed lookups (measured in bench/api: 25–40 % of the CPU of
 * an authenticated list request). Statements are cached by their SQL text (bounded, oldest
 * dropped first); a statement still busy iterating is never handed out twice.
 */
function cachePreparedStatements(database: SQLite.Database, maxStatements = 512): void {
  const prepare = database.prepare.bind(database);
  const cache = new Map<string, SQLite.Statement>();
  (database as { prepare: (source: string) => SQLite.Statement }).prepare = (source: string) => {
    const cached = cache.get(source);
    if (cached && !cached.busy) return cached;
    const statement = prepare(source);
    if (!cached) {
      if (cache.size >= maxStatements) cache.delete(cache.keys().next().value as string);
      cache.set(source, statement);
    }
    return statement;
  };
}

/**
 * PostgreSQL: named (server-side prepared) statements for parameterized queries, so that PostgreSQL
 * parses and plans each of our statements once per connection rather than on every request. The
 * name is a hash of the SQL text; node-postgres remembers per connection which names it has
 * prepared. Bounded per connection: past `maxPerConnection` distinct texts, queries run unnamed.
 */
function cachePgStatements(pool: pg.Pool, maxPerConnection = 256): void {
  // The name of a text is hashed once per pool, not on every query (a page statement is ~1 kB of SQL).
  const names = new Map<string, string>();
  const nameOf = (text: string): string => {
    let name = names.get(text);
    if (name === undefined) {
      name = `rk_${createHash('sha1').update(text).digest('base64url')}`;
      if (names.size < 4 * maxPerConnection) names.set(text, name);
    }
    return name;
  };
  pool.on('connect', (client) => {
    const named = new Set<string>();
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const [text, values] = args;
      if (typeof text === 'string' && Array.isArray(values) && values.length > 0 && args.length === 2) {
        const name = nameOf(text);
        if (named.has(name) || named.size < maxPerConnection) {
          named.add(name);
          return query({ name, text, values });
        }
      }
      return query(...args);
    };
  });
}

/**
 * PostgreSQL dialect whose introspection (used by the migrator to find its bookkeeping tables)
 * only looks at our own schema. Kysely's default introspector reads every schema of the
 * database, so another installation or test dropping its schema at the same moment made our
 * migration fail with "schema … does not exist".
 */
class SchemaScopedPostgresDialect extends PostgresDialect {
  constructor(
    config: ConstructorParameters<typeof PostgresDialect>[0],
    private readonly schema: string,
  ) {
    super(config);
  }

  override createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new SchemaScopedIntrospector(db, this.schema);
  }
}

class SchemaScopedIntrospector implements DatabaseIntrospector {
  constructor(
    private readonly db: Kysely<any>,
    private readonly schema: string,
  ) {}

  async getSchemas(): Promise<SchemaMetadata[]> {
    const rows = await sql<{ name: string }>`SELECT nspname AS name FROM pg_catalog.pg_namespace WHERE nspname = ${this.schema}`.execute(this.db);
    return rows.rows.map((r) => ({ name: r.name }));
  }

  async getTables(): Promise<TableMetadata[]> {
    const rows = await sql<{ table: string; type: string; column: string; dataType: string; nullable: string; hasDefault: boolean }>`
      SELECT t.table_name AS "table", t.table_type AS "type", c.column_name AS "column", c.data_type AS "dataType",
             c.is_nullable AS "nullable", (c.column_default IS NOT NULL) AS "hasDefault"
        FROM information_schema.tables t
        JOIN information_schema.columns c ON c.table_schema = t.table_schema AND c.table_name = t.table_name
       WHERE t.table_schema = ${this.schema}
       ORDER BY t.table_name, c.ordinal_position`.execute(this.db);
    const tables = new Map<string, TableMetadata & { columns: TableMetadata['columns'][number][] }>();
    for (const r of rows.rows) {
      let t = tables.get(r.table);
      if (!t) {
        t = { name: r.table, schema: this.schema, isView: r.type === 'VIEW', columns: [] };
        tables.set(r.table, t);
      }
      t.columns.push({ name: r.column, dataType: r.dataType, isNullable: r.nullable === 'YES', isAutoIncrementing: false, hasDefaultValue: r.hasDefault });
    }
    return [...tables.values()];
  }

  async getMetadata(): Promise<DatabaseMetadata> {
    return { tables: await this.getTables() };
  }
}
