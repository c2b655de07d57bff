/**
 * Child processes for the end-to-end test: the real server binary, the real `rockit` binary and an
 * S3-protocol store (s3rver). Everything is spoken to over HTTP or the command line only, as a
 * publisher would; nothing of the server's source is imported (lint rule: cli talks HTTP only).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SERVER_BIN = fileURLToPath(new URL('../../../../server/dist/bin.js', import.meta.url));
export const CLI_BIN = fileURLToPath(new URL('../../../dist/bin.js', import.meta.url));

/** process.env without any ROCKIT_* variable, so the caller's shell cannot change what is tested. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ROCKIT_')) env[k] = v;
  return Object.assign(env, extra);
}

export interface ServerProcess {
  proc: ChildProcess;
  /** `http://127.0.0.1:<port>` as logged by the server. */
  address: string;
  /** Everything the server wrote so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts `rockit-edge serve` on a free loopback port (or on `port`). Resolves once the server logs that it
 * listens; rejects with its output when it exits first. Throws when the binary is not built.
 */
export function startServer(dataDir: string, env: Record<string, string>, port = 0): Promise<ServerProcess> {
  if (!existsSync(SERVER_BIN)) throw new Error(`${SERVER_BIN} is missing: run \`npx tsc -b\` first`);
  const proc = spawn(process.execPath, [SERVER_BIN, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data', dataDir], {
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const onData = () => {
      for (const line of out.split('\n')) {
        if (!line.includes('rockit-edge listening')) continue;
        try {
          const rec = JSON.parse(line) as { msg?: string; address?: string };
          if (rec.msg === 'rockit-edge listening' && rec.address) {
            proc.stdout!.off('data', onData);
            resolve({
              proc,
              address: rec.address,
              log: () => out,
              async stop() {
                if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
                await exited;
              },
            });
            return;
          }
        } catch {
          /* an incomplete line */
        }
      }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
    // Never leave a server behind that did not come up (the caller has nothing to stop yet).
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not log 'rockit-edge listening' (the listening line is logged at level info): ${out}`));
    }, 30_000);
    proc.once('exit', () => clearTimeout(timer));
    proc.stdout!.on('data', () => {
      if (out.includes('rockit-edge listening')) clearTimeout(timer);
    });
  });
}

export interface CliResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node packages/cli/dist/bin.js <argv>` to completion, feeding `stdin` when given. */
export function runRockit(argv: string[], env: Record<string, string>, stdin?: string): Promise<CliResult> {
  if (!existsSync(CLI_BIN)) throw new Error(`${CLI_BIN} is missing: run \`npx tsc -b\` first`);
  const proc = spawn(process.execPath, [CLI_BIN, ...argv], { env: cleanEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  proc.stdin.end(stdin ?? '');
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (exitCode) => resolve({ exitCode, stdout, stderr }));
  });
}

/**
 * Every file and folder under `root`, as sorted `relative/path` → sha256 (folders map to "dir").
 * Symlinks are recorded by target. Two trees are byte-for-byte equal when these maps are equal.
 */
export async function treeDigest(root: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const rel = path.relative(root, full).split(path.sep).join('/');
      if (entry.isDirectory()) {
        result[rel] = 'dir';
        await walk(full);
      } else if (entry.isSymbolicLink()) {
        result[rel] = `link:${await fs.readlink(full)}`;
      } else {
        result[rel] = createHash('sha256').update(await fs.readFile(full)).digest('hex');
      }
    }
  };
  await walk(root);
  return Object.fromEntries(Object.entries(result).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Relative paths of every file (not folder) under `root`; [] when `root` does not exist. */
export async function listFiles(root: string): Promise<string[]> {
  if (!existsSync(root)) return [];
  const digest = await treeDigest(root);
  return Object.keys(digest).filter((k) => digest[k] !== 'dir');
}

export interface S3Store {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The folder s3rver keeps objects in (one sub-folder per bucket). */
  directory: string;
  stop(): Promise<void>;
}

/**
 * The child script: starts s3rver with the bucket given in argv, prints `{"port":n}` once it
 * listens, and exits when stdin closes, so it never outlives the test process. s3rver needs
 * `--openssl-legacy-provider` on Node 17+ for list continuation tokens, hence its own process.
 */
const S3RVER_CHILD = `
const S3rver = require(process.argv[1]);
const [directory, bucket] = [process.argv[2], process.argv[3]];
new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, resetOnClose: false, vhostBuckets: false,
  configureBuckets: [{ name: bucket }] }).run().then(
  (a) => process.stdout.write(JSON.stringify({ port: a.port }) + '\\n'),
  (e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

/**
 * Starts s3rver (a dev dependency of the server package) with one bucket, storing into
 * `directory`. s3rver knows only the key pair S3RVER/S3RVER and checks the key id, not the
 * signature: "wrong credentials" must use another key id.
 */
export async function startS3rver(directory: string, bucket: string): Promise<S3Store> {
  const require = createRequire(fileURLToPath(new URL('../../../../server/package.json', import.meta.url)));
  await fs.mkdir(directory, { recursive: true });
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '--no-warnings', '-e', S3RVER_CHILD, require.resolve('s3rver'), directory, bucket], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`s3rver exited early (code ${code}): ${err}`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    directory,
    async stop() {
      child.stdin.end();
      await exited;
    },
  };
}

/** Polls `check` every 100 ms until it returns a value other than undefined; throws `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One JSON request to the server under test: the parsed answer with its HTTP status as `httpStatus`. */
export async function callJson(base: string, method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<any> {
  const res = await fetch(base + p, {
    method,
    headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { httpStatus: res.status, ...(text ? (JSON.parse(text) as object) : {}) };
}
