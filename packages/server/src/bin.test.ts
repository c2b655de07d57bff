import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

/** The real binary (built by `tsc -b`): first start prints an admin token, serves, drains on SIGTERM. */
describe.skipIf(!fs.existsSync(BIN))('rockit-edge binary', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-bin-'));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('migrate, then serve: generated admin token, create an org, SIGTERM → exit 0', async () => {
    const env = { ...process.env, ROCKIT_SCRYPT_COST: '1024', ROCKIT_ADMIN_TOKEN: '', ROCKIT_DATABASE_URL: '' };
    const migrate = spawn(process.execPath, [BIN, 'migrate', '--data', dataDir], { env });
    let migrateOut = '';
    migrate.stdout.on('data', (d) => (migrateOut += d));
    expect(await new Promise((r) => migrate.on('exit', r))).toBe(0);
    expect(migrateOut).toContain('latest migration');

    const port = await freePort();
    const child = spawn(process.execPath, [BIN, 'serve', '--port', String(port), '--data', dataDir], { env });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    for (let i = 0; i < 300 && !out.includes('rockit-edge listening'); i++) await new Promise((r) => setTimeout(r, 50));
    const token = /Generated admin token[^:]*: (\S+)/.exec(out)?.[1];
    expect(token, out).toBeTruthy();
    expect(fs.readFileSync(path.join(dataDir, 'admin-token.sha256'), 'utf8')).not.toContain(token!);
    const base = `http://127.0.0.1:${port}`;
    const created = await fetch(`${base}/adm/v1/orgs`, {
      method: 'POST', headers: { 'x-rockit-admin-token': token!, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bin_org' }),
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('x-request-id')).toBeTruthy();
    expect(out).not.toContain(token!.slice(10) + '"'); // the token is printed once, never logged with requests
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out.match(/Generated admin token/g)).toHaveLength(1);

    // Second start: no new token; the stored hash still accepts the first one.
    const port2 = await freePort();
    const again = spawn(process.execPath, [BIN, 'serve', '--port', String(port2), '--data', dataDir], { env });
    let out2 = '';
    again.stdout.on('data', (d) => (out2 += d));
    const exited2 = new Promise<number | null>((r) => again.on('exit', (code) => r(code)));
    for (let i = 0; i < 300 && !out2.includes('rockit-edge listening'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(out2).not.toContain('Generated admin token');
    const ping = await fetch(`http://127.0.0.1:${port2}/adm/v1/ping`, { method: 'POST', headers: { 'x-rockit-admin-token': token! } });
    expect(ping.status).toBe(200);
    again.kill('SIGTERM');
    expect(await exited2).toBe(0);
  });
});
