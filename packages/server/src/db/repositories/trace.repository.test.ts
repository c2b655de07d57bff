import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { dropSchema, TEST_DIALECTS, TEST_PG_URL } from '../../test-support/test-server.js';
import { createDb } from '../dialect.js';
import { migrateToLatest } from '../migrator.js';
import type { NewTrace } from '../faststart-tables.js';
import { countTraces, deleteTracesOfApp, insertTrace, listTraces, traceBlobKeysOfOrg, traceBytesOfApp } from './trace.repository.js';
import { countDownloadKeysOfApp, deleteDownloadKey, findDownloadKeyByHash, insertDownloadKey, listDownloadKeys } from './download-key.repository.js';

describe.each(TEST_DIALECTS)('trace and download-key repositories (%s)', (dialect) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-tr-'));
  const schema = `tr_${randomBytes(5).toString('hex')}`;
  const config = dialect === 'pg' ? ({ kind: 'pg', url: TEST_PG_URL, schema } as const) : ({ kind: 'sqlite', file: path.join(dir, 't.sqlite') } as const);
  afterAll(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    if (dialect === 'pg') await dropSchema(schema);
  });

  it('inserts, counts, lists newest first, sums and deletes per app; org deletion cascades', async () => {
    const db = await createDb(config);
    try {
      await migrateToLatest(db.db, db.schema);
      const t = 1_700_000_000_000;
      for (const o of ['o1', 'o2']) await db.db.insertInto('orgs').values({ id: o, name: `org_${o}`, label: o, created_ms: t, updated_ms: t }).execute();
      const app = (id: string, org: string) => ({ id, org_id: org, name: id, label: id, max_builds: 3, i_cur_build: null, dxf_name: null, next_build_id: 1, processing: 0, exporting: 0, locked: 0, error: null, size_bytes: 0, uploads_bytes: 0, traces_bytes: 0, created_ms: t, updated_ms: t });
      await db.db.insertInto('apps').values([app('a1', 'o1'), app('a2', 'o1'), app('b1', 'o2')]).execute();
      const row = (id: string, org: string, appId: string, created: number): NewTrace => ({
        id, org_id: org, app_id: appId, build_id: 1, dxf_name: 'game', session_id: 's', first_session: 1, records: 3, bytes_read: 300,
        duration_ms: 12, coverage: 0.75, blob_key: `traces/${org}/${appId}/${id}.rktr`, size_bytes: 40, created_ms: created,
      });
      await insertTrace(db.db, row('tr_1', 'o1', 'a1', t));
      await insertTrace(db.db, row('tr_2', 'o1', 'a1', t + 10));
      await insertTrace(db.db, row('tr_3', 'o1', 'a2', t + 10));
      await insertTrace(db.db, row('tr_4', 'o2', 'b1', t + 10));
      expect(await countTraces(db.db, 'a1')).toBe(2);
      expect(await countTraces(db.db, 'a1', t + 5)).toBe(1);
      const list = await listTraces(db.db, 'o1', 'a1');
      expect(list.map((r) => r.id)).toEqual(['tr_2', 'tr_1']);
      expect(list[0]).toMatchObject({ coverage: 0.75, build_id: 1, size_bytes: 40, created_ms: t + 10, first_session: 1 });
      expect(await listTraces(db.db, 'o2', 'a1')).toEqual([]); // another org's app: nothing
      expect((await listTraces(db.db, 'o1', 'a1', { limit: 1 })).map((r) => r.id)).toEqual(['tr_2']);
      expect(await traceBytesOfApp(db.db, 'a1')).toBe(80);
      expect(await traceBytesOfApp(db.db, 'nope')).toBe(0);
      expect((await deleteTracesOfApp(db.db, 'a1')).sort()).toEqual(['traces/o1/a1/tr_1.rktr', 'traces/o1/a1/tr_2.rktr']);
      expect(await countTraces(db.db, 'a1')).toBe(0);
      expect(await countTraces(db.db, 'a2')).toBe(1);

      await insertDownloadKey(db.db, { id: 'dk_1', org_id: 'o1', app_id: 'a2', label: 'l', key_hash: 'h1', created_ms: t, last_used_ms: null });
      await expect(insertDownloadKey(db.db, { id: 'dk_2', org_id: 'o1', app_id: 'a2', label: 'l', key_hash: 'h1', created_ms: t, last_used_ms: null })).rejects.toThrow();
      expect((await findDownloadKeyByHash(db.db, 'h1'))?.id).toBe('dk_1');
      expect(await countDownloadKeysOfApp(db.db, 'a2')).toBe(1);
      expect(await listDownloadKeys(db.db, 'o2')).toEqual([]);
      expect(await deleteDownloadKey(db.db, 'o2', 'dk_1')).toBe(false);

      expect(await traceBlobKeysOfOrg(db.db, 'o1')).toEqual(['traces/o1/a2/tr_3.rktr']);
      await db.db.deleteFrom('orgs').where('id', '=', 'o1').execute();
      expect(await countTraces(db.db, 'a2')).toBe(0);
      expect(await listDownloadKeys(db.db, 'o1')).toEqual([]);
      expect(await countTraces(db.db, 'b1')).toBe(1);
    } finally {
      await db.close();
    }
  });
});
