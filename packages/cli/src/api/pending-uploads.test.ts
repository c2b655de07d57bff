import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findPendingUpload, fingerprint, forgetPendingUpload, pendingUploadsPath, savePendingUpload, type PendingUpload } from './pending-uploads.js';

let dir: string;
let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-pending-'));
  env = { XDG_CONFIG_HOME: dir, HOME: dir };
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const record = (taskName: string, createdMs = Date.now()): PendingUpload => ({
  taskName, server: 'http://127.0.0.1:8080', orgName: 'acme', appName: 'demo', url: `http://127.0.0.1:8080/be/v1/uploads/${taskName}?token=x`,
  method: 'PUT', source: '/tmp/game', sizeBytes: 10, fingerprint: 'f', createdMs,
});

describe('pending uploads (rockit push --resume)', () => {
  it('saves next to the login with mode 0600, finds and forgets', async () => {
    await savePendingUpload(env, record('t_1'));
    await savePendingUpload(env, record('t_2'));
    const file = pendingUploadsPath(env);
    expect(file).toBe(path.join(dir, 'rockit', 'uploads.json'));
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect((await fs.stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    expect(await findPendingUpload(env, 't_1')).toMatchObject({ taskName: 't_1', appName: 'demo' });
    await forgetPendingUpload(env, 't_1', Date.now());
    expect(await findPendingUpload(env, 't_1')).toBeNull();
    expect(await findPendingUpload(env, 't_2')).not.toBeNull();
  });

  it('hostile task names and a damaged file find nothing and break nothing', async () => {
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) expect(await findPendingUpload(env, name)).toBeNull();
    await fs.mkdir(path.join(dir, 'rockit'), { recursive: true });
    for (const text of ['{not json', 'null', '[]', '{"version":2,"uploads":{}}', '{"version":1,"uploads":"x"}']) {
      await fs.writeFile(pendingUploadsPath(env), text);
      expect(await findPendingUpload(env, 't_1'), text).toBeNull();
    }
    // A damaged file is replaced by the next save.
    await savePendingUpload(env, record('t_1'));
    expect(await findPendingUpload(env, 't_1')).not.toBeNull();
  });

  it('keeps at most 100 records and none older than a month', async () => {
    const now = Date.now();
    await savePendingUpload(env, record('t_old', now - 40 * 24 * 3600 * 1000));
    for (let i = 0; i < 105; i++) await savePendingUpload(env, record(`t_${i}`, now + i));
    const kept = JSON.parse(await fs.readFile(pendingUploadsPath(env), 'utf8')).uploads;
    expect(Object.keys(kept)).toHaveLength(100);
    expect(kept.t_old).toBeUndefined();
    expect(kept.t_0).toBeUndefined();
    expect(kept.t_104).toBeDefined();
  });

  it('fingerprints differ when a name, size or modification time does', () => {
    const base = [{ name: 'a', type: 'file', size: 1, mtime: 1.5 }];
    const f = fingerprint(base);
    expect(fingerprint([{ ...base[0]!, name: 'b' }])).not.toBe(f);
    expect(fingerprint([{ ...base[0]!, size: 2 }])).not.toBe(f);
    expect(fingerprint([{ ...base[0]!, mtime: 1.6 }])).not.toBe(f);
    expect(fingerprint(base)).toBe(f);
  });
});
