// Helpers of the import HTTP tests (builds.test.ts, release-control.test.ts): a small game tar, an app row, the
// upload of a build through the real routes, and polling until the app's pipeline settles.
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { AppRow, DeploymentRow } from '../db/app-tables.js';
import { IMPORT_TASK_TYPES } from '../domain/task-types.js';
import { insertApp } from '../db/repositories/app.repository.js';
import { findOrgByName } from '../db/repositories/org.repository.js';
import { makeTar, pseudoRandomBytes } from '../pipeline/test-support/fixtures.js';
import { uniqueName, type OrgFixture } from './factories.js';
import type { TestServer } from './test-server.js';

export const PIPELINE: string[] = [...IMPORT_TASK_TYPES];
export const env = {
  ROCKIT_ALLOW_PRIVATE_ADDRESSES: 'true',
  ROCKIT_UPLOAD_EXPIRY_SECONDS: '600',
  ROCKIT_GRACE_PERIOD_SECONDS: '60',
  ROCKIT_MAX_UPLOAD_BYTES: String(256 * 1024),
  ROCKIT_LEASE_SECONDS: '3600',
  ROCKIT_TASK_MAX_ATTEMPTS: '1',
  // The tests move the clock past grace periods and upload deadlines.
  ROCKIT_AUTH_SECONDS: String(24 * 3600),
};

/** A small game folder; `variant` changes one file so builds differ a little (patches stay small). */
export function gameTar(variant: number): Promise<Buffer> {
  return makeTar([
    { name: 'game/', type: 'directory' },
    { name: 'game/data.bin', content: pseudoRandomBytes(40_000, 7) },
    { name: 'game/level.bin', content: pseudoRandomBytes(9_000, 100 + variant) },
    { name: 'game/readme.txt', content: `build ${variant}\n` },
  ]);
}

export async function createApp(t: TestServer, org: OrgFixture, maxBuilds = 5, name = uniqueName('app')): Promise<AppRow> {
  const o = await findOrgByName(t.server.db.db, org.name);
  const now = t.clock.now();
  const row: AppRow = {
    id: randomUUID(), org_id: o!.id, name, label: name, max_builds: maxBuilds, i_cur_build: null, dxf_name: null, next_build_id: 1,
    processing: 0, exporting: 0, locked: 0, error: null, size_bytes: 0, uploads_bytes: 0, traces_bytes: 0, created_ms: now, updated_ms: now,
  };
  await insertApp(t.server.db.db, row);
  return row;
}

export async function task(t: TestServer, h: Record<string, string>, name: string): Promise<any> {
  const r = await t.req('GET', `/be/v1/tasks/${name}`, { headers: h });
  expect(r.statusCode, r.body).toBe(200);
  return r.json().task;
}

/** Polls until no pipeline task of the app is submitted or running; returns the app's tasks, oldest first. */
export async function settle(t: TestServer, h: Record<string, string>, appName: string, opts: { allowWaiting?: string[] } = {}): Promise<any[]> {
  for (let i = 0; i < 2000; i++) {
    const r = await t.req('GET', `/be/v1/tasks?appName=${appName}&limit=100&order[]=name`, { headers: h });
    const tasks = r.json().tasks as any[];
    const busy = tasks.filter((x) => PIPELINE.includes(x.type) && ['submitted', 'running'].includes(x.status) && !opts.allowWaiting?.includes(x.name));
    if (busy.length === 0) return tasks.filter((x) => x.appName === appName);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('pipeline did not settle');
}

export async function upload(t: TestServer, h: Record<string, string>, appName: string, tar: Buffer, extra: Record<string, unknown> = {}) {
  const r = await t.req('POST', '/be/v1/builds', { headers: h, body: { appName, ...extra } });
  expect(r.statusCode, r.body).toBe(202);
  const { task: submitted, upload: up } = r.json();
  const put = await t.app.inject({ method: 'PUT', url: new URL(up.url).pathname + new URL(up.url).search, headers: { 'content-type': 'application/x-tar' }, payload: tar });
  return { submitted, up, put };
}

/** An fs deployment row (no secrets to seal). */
export const fsDeployment = (orgId: string, folder: string, nowMs: number): DeploymentRow => ({
  id: randomUUID(), org_id: orgId, name: uniqueName('dep'), label: 'fs', type: 'fs', origin_prefix: null, s3_endpoint: null, s3_region: null,
  s3_bucket: null, s3_access_key_id: null, s3_secret_sealed: null, s3_force_path_style: null, fs_path: folder,
  download_auth_type: null, download_auth_key_sealed: null, status: 'ok', message: '', checked_ms: null, created_ms: nowMs, updated_ms: nowMs,
});

export const depotFile = (t: TestServer, rel: string): string => path.join(t.dataDir, 'blobs', 'cdn', ...rel.split('/'));
