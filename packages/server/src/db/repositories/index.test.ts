import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropSchema, TEST_DIALECTS, TEST_PG_URL } from '../../test-support/test-server.js';
import { createDb, type Db } from '../dialect.js';
import { migrateToLatest } from '../migrator.js';
import type { Executor } from './common.js';
import { bindRepositories, type BoundRepositories } from './index.js';

const T = 1_700_000_000_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.each(TEST_DIALECTS)('repositories bound to the dialect (%s)', (dialect) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-repos-'));
  const schema = `rp_${randomBytes(5).toString('hex')}`;
  const config = dialect === 'pg' ? ({ kind: 'pg', url: TEST_PG_URL, schema } as const) : ({ kind: 'sqlite', file: path.join(dir, 'r.sqlite') } as const);
  const statements: string[] = [];
  let db: Db;
  let repos: BoundRepositories;

  beforeAll(async () => {
    db = await createDb(config, { onQuery: (sql) => statements.push(sql) });
    await migrateToLatest(db.db, db.schema);
    repos = bindRepositories(db.capabilities);
    await db.db.insertInto('orgs').values({ id: 'o1', name: 'org_one', label: 'One', created_ms: T, updated_ms: T }).execute();
    await db.db.insertInto('roles').values({ id: 'r1', org_id: 'o1', name: 'role', label: 'Role', permissions: '{}', builtin: 0, created_ms: T, updated_ms: T }).execute();
    await db.db.insertInto('apps').values({
      id: 'a1', org_id: 'o1', name: 'app', label: 'App', max_builds: 3, i_cur_build: null, dxf_name: null, next_build_id: 1, processing: 0,
      exporting: 0, locked: 0, error: null, size_bytes: 0, uploads_bytes: 0, traces_bytes: 0, created_ms: T, updated_ms: T,
    }).execute();
    const dep = (id: string, name: string) => ({
      id, org_id: 'o1', name, label: name, type: 'fs' as const, origin_prefix: null, s3_endpoint: null, s3_region: null, s3_bucket: null,
      s3_access_key_id: null, s3_secret_sealed: null, s3_force_path_style: null, fs_path: `/tmp/${name}`, download_auth_type: null,
      download_auth_key_sealed: null, status: 'ok' as const, message: '', checked_ms: null, created_ms: T, updated_ms: T,
    });
    await db.db.insertInto('deployments').values([dep('d1', 'cdn_b'), dep('d2', 'cdn_a')]).execute();
  });
  afterAll(async () => {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
    if (dialect === 'pg') await dropSchema(schema);
  });

  /**
   * Transaction A takes `first` and holds it; transaction B then runs `second`. Returns the order of
   * events: B's step must come after A ended (a row lock, or SQLite's one writer at a time).
   */
  async function orderOf(first: (trx: Executor) => Promise<unknown>, second: (trx: Executor) => Promise<unknown>): Promise<string[]> {
    const events: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let taken!: () => void;
    const didTake = new Promise<void>((r) => (taken = r));
    const a = db.db.transaction().execute(async (trx) => {
      await first(trx);
      taken();
      await held;
      events.push('a ends');
    });
    await didTake;
    const b = db.db.transaction().execute(async (trx) => {
      await second(trx);
      events.push('b done');
    });
    await sleep(150);
    events.push('release');
    release();
    await Promise.all([a, b]);
    return events;
  }

  it('lockApp, lockRole and lockDeployment hold the row until the transaction ends', async () => {
    expect(await orderOf((trx) => repos.lockApp(trx, 'a1'), (trx) => repos.lockApp(trx, 'a1'))).toEqual(['release', 'a ends', 'b done']);
    expect(await orderOf((trx) => repos.lockRole(trx, 'r1'), (trx) => repos.lockRole(trx, 'r1'))).toEqual(['release', 'a ends', 'b done']);
    expect(await orderOf((trx) => repos.lockDeployment(trx, 'd1'), (trx) => repos.lockDeployment(trx, 'd1'))).toEqual(['release', 'a ends', 'b done']);
  });

  it('findDeploymentsByNamesLocked finds by name (unknown names absent) and a concurrent delete waits for the transaction', async () => {
    const found = await db.db.transaction().execute((trx) => repos.findDeploymentsByNamesLocked(trx, 'o1', ['cdn_b', 'nope', 'cdn_a']));
    expect(found.map((d) => d.id)).toEqual(['d2', 'd1']);
    expect(await db.db.transaction().execute((trx) => repos.findDeploymentsByNamesLocked(trx, 'o1', []))).toEqual([]);
    expect(await db.db.transaction().execute((trx) => repos.findDeploymentsByNamesLocked(trx, 'other', ['cdn_a']))).toEqual([]);
    const order = await orderOf(
      (trx) => repos.findDeploymentsByNamesLocked(trx, 'o1', ['cdn_a']),
      (trx) => trx.deleteFrom('deployments').where('id', '=', 'd2').execute(),
    );
    expect(order).toEqual(['release', 'a ends', 'b done']);
  });

  it('takes row locks exactly where the dialect has them', async () => {
    statements.length = 0;
    await db.db.transaction().execute(async (trx) => {
      await repos.lockApp(trx, 'a1');
      await repos.lockRole(trx, 'r1');
      await repos.lockDeployment(trx, 'd1');
      await repos.findDeploymentsByNamesLocked(trx, 'o1', ['cdn_b']);
    });
    const locking = statements.filter((s) => / for (update|share)$/i.test(s.trim()));
    expect(locking).toHaveLength(db.capabilities.rowLocks ? 4 : 0);
  });
});
