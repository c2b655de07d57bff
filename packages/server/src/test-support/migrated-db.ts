import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { createDb, type Db } from '../db/dialect.js';
import { migrateToLatest } from '../db/migrator.js';
import { dropSchema, TEST_PG_URL, type Dialect } from './test-server.js';

/**
 * A migrated database of `dialect` for the tests of one describe block, without a server: a SQLite
 * file in a temporary folder or a fresh PostgreSQL schema, opened before the block and removed after
 * it. Returns a getter (the database exists only once beforeAll ran).
 */
export function useMigratedDb(dialect: Dialect, prefix: string): () => Db {
  let db: Db | undefined;
  let dir: string;
  const schema = `${prefix}_${randomBytes(5).toString('hex')}`;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `rockit-${prefix}-`));
    db = await createDb(dialect === 'pg' ? { kind: 'pg', url: TEST_PG_URL, schema } : { kind: 'sqlite', file: path.join(dir, 'q.sqlite') });
    await migrateToLatest(db.db, db.schema);
  });
  afterAll(async () => {
    await db?.close();
    fs.rmSync(dir, { recursive: true, force: true });
    if (dialect === 'pg') await dropSchema(schema);
  });
  return () => {
    if (!db) throw new Error('the test database is opened in beforeAll');
    return db;
  };
}
