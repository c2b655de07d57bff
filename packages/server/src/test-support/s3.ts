/**
 * A real S3-protocol server for tests: `s3rver` (a Koa app that stores objects in a folder),
 * started in a child Node.js process on a free loopback port, in its own temporary folder.
 *
 * Why a child process: s3rver 3.7 builds list continuation tokens with DES, which OpenSSL 3
 * (Node 17+) only offers through its legacy provider; without `--openssl-legacy-provider` every
 * truncated ListObjectsV2 answer is a 500. The flag only exists on the command line, so the server
 * gets its own process (which also keeps its logger and sockets out of the test process).
 *
 * Other known limits of s3rver that tests must respect:
 * - it checks that the access key id exists but does not verify SigV4 signatures, so "wrong
 *   credentials" must use an unknown access key id (see `wrongCredentials`), not only a wrong secret;
 * - it does not understand the aws-chunked uploads with checksum trailers that recent SDKs send by
 *   default, so clients must set `requestChecksumCalculation: 'WHEN_REQUIRED'` (our S3 blob store does).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);

/** The only key pair s3rver knows (its built-in dummy account). */
const S3RVER_KEY = 'S3RVER';

/**
 * Runs in the child: starts s3rver from the JSON options in argv[1], prints `{"port":n}` once
 * listening, and exits when its stdin closes (so it never outlives the test process).
 */
const CHILD_SCRIPT = `
const S3rver = require(process.argv[1]);
const opts = JSON.parse(process.argv[2]);
const server = new S3rver({
  address: '127.0.0.1', port: 0, silent: true, directory: opts.directory, resetOnClose: false,
  vhostBuckets: false, configureBuckets: opts.buckets.map((name) => ({ name })),
});
server.run().then((address) => {
  process.stdout.write(JSON.stringify({ port: address.port }) + '\\n');
  server.httpServer.on('request', (req) => {
    process.stdout.write(JSON.stringify({ request: req.method + ' ' + req.url }) + '\\n');
  });
}, (err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

export interface S3TestServer {
  /** `http://127.0.0.1:<port>` — use with path-style addressing. */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Credentials the server refuses with 403 InvalidAccessKeyId (a "write-refusing origin"). */
  wrongCredentials: { accessKeyId: string; secretAccessKey: string };
  /**
   * `METHOD /path?query` of every request received so far, in arrival order (reported by the
   * child asynchronously: read it after the client call that caused it has returned).
   */
  requests(): string[];
  /** Stops the server process and removes its folder. */
  stop(): Promise<void>;
}

/** Starts s3rver with the given buckets (default `test`) already created. */
export async function startS3Server(options: { buckets?: string[] } = {}): Promise<S3TestServer> {
  const directory = await mkdtemp(join(tmpdir(), 'rockit-s3rver-'));
  const opts = JSON.stringify({ directory, buckets: options.buckets ?? ['test'] });
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', '--no-warnings', '-e', CHILD_SCRIPT, require.resolve('s3rver'), opts],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });

  const requests: string[] = [];
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
          const line = JSON.parse(out.slice(0, nl)) as { port?: number; request?: string };
          out = out.slice(nl + 1);
          if (line.port !== undefined) resolve(line.port);
          if (line.request !== undefined) requests.push(line.request);
        }
      });
      child.once('exit', (code) => reject(new Error(`s3rver exited early (code ${code}): ${stderr}`)));
      child.once('error', reject);
    });
  } catch (err) {
    child.kill();
    await rm(directory, { recursive: true, force: true });
    throw err;
  }

  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    accessKeyId: S3RVER_KEY,
    secretAccessKey: S3RVER_KEY,
    wrongCredentials: { accessKeyId: 'WRONGKEYID', secretAccessKey: 'wrong-secret-do-not-print' },
    requests: () => [...requests],
    async stop() {
      if (stopped) return;
      stopped = true;
      child.stdin.end();
      await exited;
      await rm(directory, { recursive: true, force: true });
    },
  };
}
