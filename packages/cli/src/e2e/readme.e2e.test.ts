// The README's "first ten minutes" (issue 13, item 1), run as a user would: the server started
// with the README's own `npm start` line, then the README's client block run verbatim by bash
// from the repository root, with `npx rockit` resolved through node_modules/.bin (never the
// registry: npm runs offline here). The only changes to the text: the port (8080 may be taken on
// a shared machine) and /tmp/ (a folder of this test's own).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs, realpathSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanEnv, treeDigest, waitFor } from './test-support/processes.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** The fenced sh block after the `<!-- readme-e2e: <name> -->` marker. */
function block(readme: string, name: string): string {
  const at = readme.indexOf(`<!-- readme-e2e: ${name} -->`);
  if (at < 0) throw new Error(`README has no "readme-e2e: ${name}" block`);
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!m) throw new Error(`no sh block after "readme-e2e: ${name}"`);
  return m[1]!;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

function run(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  const proc = spawn('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code) => resolve({ code, out }));
  });
}

let dir: string;
let server: ChildProcess | undefined;
let serverLog = '';
let port: number;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-readme-'));
  port = await freePort();
});

afterAll(async () => {
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    process.kill(-server.pid!, 'SIGTERM');
    await exited;
  }
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('README: the first ten minutes', () => {
  it('npm ci linked `rockit` to the committed shim (so npx never asks the registry)', () => {
    const link = path.join(ROOT, 'node_modules', '.bin', 'rockit');
    expect(existsSync(link), `${link} is missing: npm ci did not link the rockit bin`).toBe(true);
    expect(realpathSync(link)).toBe(realpathSync(path.join(ROOT, 'packages', 'cli', 'bin', 'rockit.js')));
    const edge = path.join(ROOT, 'node_modules', '.bin', 'rockit-edge');
    expect(realpathSync(edge)).toBe(realpathSync(path.join(ROOT, 'packages', 'server', 'bin', 'rockit-edge.js')));
  });

  it('runs verbatim against a server started as the README says, and installs build 2 byte-exact', async () => {
    const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
    const serverLine = block(readme, 'server').trim();
    expect(serverLine).toMatch(/^ROCKIT_ADMIN_TOKEN=\S{32,} npm start\b/);
    const client = block(readme, 'client');
    expect(client).toContain('npx rockit push');

    // The server: the README's line, on a port and data folder of its own.
    server = spawn('bash', ['-c', serverLine], {
      cwd: ROOT,
      env: cleanEnv({ ROCKIT_PORT: String(port), ROCKIT_DATA: path.join(dir, 'data') }),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    server.stdout!.setEncoding('utf8').on('data', (s: string) => (serverLog += s));
    server.stderr!.setEncoding('utf8').on('data', (s: string) => (serverLog += s));
    await waitFor('the README server to answer /srv/v1/health', 180_000, async () => {
      if (server!.exitCode !== null) throw new Error(`npm start exited with ${server!.exitCode}: ${serverLog}`);
      const r = await fetch(`http://127.0.0.1:${port}/srv/v1/health`).catch(() => null);
      return r?.ok ? true : undefined;
    });

    const tmp = path.join(dir, 'tmp');
    await fs.mkdir(tmp);
    const script = client.replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`).replaceAll('/tmp/', `${tmp}/`);
    const home = path.join(dir, 'home');
    await fs.mkdir(home);
    const env = cleanEnv({ HOME: home, npm_config_offline: 'true', npm_config_update_notifier: 'false', npm_config_yes: 'false' });
    delete env.XDG_CONFIG_HOME;
    const r = await run(script, env);
    expect(r.code, `${r.out}\n--- server ---\n${serverLog.slice(-4000)}`).toBe(0);

    expect(r.out).toMatch(/published acme\/demo build 1 \(1\.0\.0\)/);
    expect(r.out).toMatch(/published acme\/demo build 2 \(1\.0\.1\).*patches from build 1/);
    expect(existsSync(path.join(home, '.config', 'rockit', 'credentials.json'))).toBe(true);
    expect(await treeDigest(path.join(tmp, 'installed'))).toEqual(await treeDigest(path.join(tmp, 'game', 'v2')));
  }, 420_000);
});
