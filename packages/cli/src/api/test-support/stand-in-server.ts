// A local node:http server standing in for a remote ROCKIT Edge server in CLI unit tests: each
// test scripts the answers (recorded envelope shapes of spec/api.md) and inspects the requests.
// It is not a model of the server's rules; end-to-end tests use the real server.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Command } from 'commander';
import { Readable } from 'node:stream';
import type { CliContext } from '../context.js';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body parsed as JSON, when it is. */
  json: unknown;
}

export interface Reply {
  status: number;
  body?: unknown;
  /** Raw text instead of JSON. */
  text?: string;
  headers?: Record<string, string>;
}

export type Handler = (req: RecordedRequest) => Reply | Promise<Reply>;

export interface StandIn {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

let requestCounter = 0;

/** Starts the stand-in on 127.0.0.1 with a random port. Every answer carries an x-request-id. */
export async function startStandIn(handler: Handler): Promise<StandIn> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://stand-in');
      const body = Buffer.concat(chunks);
      let json: unknown = undefined;
      try {
        json = body.length ? JSON.parse(body.toString('utf8')) : undefined;
      } catch {
        json = undefined;
      }
      const recorded: RecordedRequest = { method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, body, json };
      requests.push(recorded);
      Promise.resolve()
        .then(() => handler(recorded))
        .then(
          (reply) => {
            const headers: Record<string, string> = { 'x-request-id': `req-${++requestCounter}`, ...reply.headers };
            if (reply.text !== undefined) {
              res.writeHead(reply.status, { 'content-type': 'text/html', ...headers });
              res.end(reply.text);
            } else {
              res.writeHead(reply.status, { 'content-type': 'application/json', ...headers });
              res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
            }
          },
          (err: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(String(err));
          },
        );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const ok = (payload: Record<string, unknown>, status = 200): Reply => ({ status, body: { status: 'success', ...payload } });
export const fail = (status: number, error: string, message: string, extra: Record<string, unknown> = {}): Reply => ({
  status,
  body: { status: 'error', error, message, ...extra },
});

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs one CLI invocation in-process: a fresh commander program with the given registrations,
 * environment and stdin, no real waiting. Usage errors of commander come back as exit code 1.
 */
export async function runCli(
  registers: ((program: Command, ctx: CliContext) => void)[],
  argv: string[],
  opts: { env: NodeJS.ProcessEnv; stdin?: string; now?: () => number; interruptAtOnce?: boolean },
): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  let exitCode = 0;
  const ctx: CliContext = {
    env: opts.env,
    stdout: { write: (s: string) => ((stdout += s), true) },
    stderr: { write: (s: string) => ((stderr += s), true) },
    stdin: Readable.from(opts.stdin !== undefined ? [Buffer.from(opts.stdin)] : []),
    pollIntervalMs: 0,
    retryDelayMs: 0,
    sleep: async () => {},
    now: opts.now ?? Date.now,
    setExitCode: (code) => {
      exitCode = code;
    },
    // With interruptAtOnce, Ctrl-C is "pressed" the moment a command starts listening for it.
    onInterrupt: (handler) => {
      if (opts.interruptAtOnce) handler();
      return () => {};
    },
  };
  const program = new Command();
  program.exitOverride();
  program.configureOutput({ writeOut: (s) => (stdout += s), writeErr: (s) => (stderr += s) });
  for (const register of registers) register(program, ctx);
  try {
    await program.parseAsync(['node', 'rockit', ...argv]);
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    exitCode = typeof code === 'number' ? code : 1;
  }
  return { exitCode, stdout, stderr };
}


/**
 * A temporary XDG_CONFIG_HOME holding a stored session for `server` (token "sess"), and a
 * stand-in handler wrapper that answers POST /be/v1/auth for it with auth token "auth-1".
 */
export async function loggedInEnv(server: string, dir: string): Promise<NodeJS.ProcessEnv> {
  const { writeCredentials, credentialsPath } = await import('../credentials.js');
  const env = { XDG_CONFIG_HOME: dir, HOME: dir };
  await writeCredentials(credentialsPath(env), {
    version: 1,
    server,
    orgName: 'acme',
    username: 'alice',
    session: { token: 'sess', expires: Math.floor(Date.now() / 1000) + 86400 },
    saved: Math.floor(Date.now() / 1000),
  });
  return env;
}

/** Answers POST /be/v1/auth for session "sess"; demands auth token "auth-1" on everything else. */
export function withAuth(handler: Handler): Handler {
  return (req) => {
    if (req.path === '/be/v1/auth') {
      if (req.headers['x-rockit-besession-token'] !== 'sess') return fail(401, 'token-invalid', 'unknown session');
      return ok({ auth: { token: 'auth-1', expires: Math.floor(Date.now() / 1000) + 300 } });
    }
    if (req.path.startsWith('/be/v1/') && req.headers['x-rockit-beauth-token'] !== 'auth-1') {
      return fail(401, 'token-missing', 'credentials required');
    }
    return handler(req);
  };
}
