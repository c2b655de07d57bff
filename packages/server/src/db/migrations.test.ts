import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { dropSchema, TEST_DIALECTS, TEST_PG_URL } from '../test-support/test-server.js';
import { DATABASE_COLUMNS } from './database-columns.js';
import { createDb } from './dialect.js';
import { MIGRATIONS, migrateToLatest } from './migrator.js';

describe.each(TEST_DIALECTS)('migrations (%s)', (dialect) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-mig-'));
  const schema = `m_${randomBytes(5).toString('hex')}`;
  const config = dialect === 'pg' ? ({ kind: 'pg', url: TEST_PG_URL, schema } as const) : ({ kind: 'sqlite', file: path.join(dir, 'm.sqlite') } as const);
  afterAll(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    if (dialect === 'pg') await dropSchema(schema);
  });

  it('goes from empty to latest, then is a no-op; integers read back as numbers', async () => {
    const db = await createDb(config);
    try {
      const first = await migrateToLatest(db.db, db.schema);
      expect(first.results?.map((r) => [r.migrationName, r.status])).toEqual(Object.keys(MIGRATIONS).map((n) => [n, 'Success']));
      const second = await migrateToLatest(db.db, db.schema);
      expect(second.results).toEqual([]);
      const big = Date.UTC(2100, 0, 1);
      await db.db.insertInto('orgs').values({ id: 'o1', name: 'org_one', label: 'One', created_ms: big, updated_ms: big }).execute();
      const row = await db.db.selectFrom('orgs').selectAll().executeTakeFirstOrThrow();
      expect(row.created_ms).toBe(big);
      const { c } = await db.db.selectFrom('orgs').select((eb) => eb.fn.countAll<number>().as('c')).executeTakeFirstOrThrow();
      expect(c).toBe(1);
    } finally {
      await db.close();
    }
    // A second process (re)opening the same database sees it at the latest migration.
    const again = await createDb(config);
    try {
      expect((await migrateToLatest(again.db, again.schema)).results).toEqual([]);
    } finally {
      await again.close();
    }
  });

  it('enforces foreign keys and cascades org deletion', async () => {
    const db = await createDb(config);
    try {
      await migrateToLatest(db.db, db.schema);
      const now = 1;
      await expect(
        db.db.insertInto('roles').values({ id: 'r0', org_id: 'missing', name: 'x', label: 'x', permissions: '{}', builtin: 0, created_ms: now, updated_ms: now }).execute(),
      ).rejects.toThrow();
      await db.db.insertInto('orgs').values({ id: 'o2', name: 'org_two', label: 'Two', created_ms: now, updated_ms: now }).execute();
      await db.db.insertInto('roles').values({ id: 'r2', org_id: 'o2', name: 'x', label: 'x', permissions: '{}', builtin: 0, created_ms: now, updated_ms: now }).execute();
      await db.db.deleteFrom('orgs').where('id', '=', 'o2').execute();
      expect(await db.db.selectFrom('roles').selectAll().where('id', '=', 'r2').execute()).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('leaves exactly the tables and columns of the Database type (DATABASE_COLUMNS)', async () => {
    const db = await createDb(config);
    try {
      await migrateToLatest(db.db, db.schema);
      // The migrator's own tables (kysely_migration…) are not part of the schema the app uses.
      const tables = (await db.db.introspection.getTables()).filter((t) => !t.name.startsWith('kysely_'));
      const actual = Object.fromEntries(tables.map((t) => [t.name, t.columns.map((c) => c.name).sort()]));
      const expected = Object.fromEntries(Object.entries(DATABASE_COLUMNS).map(([t, cols]) => [t, [...cols].sort()]));
      expect(actual).toEqual(expected);
    } finally {
      await db.close();
    }
  });
});
