import type { Command } from 'commander';
import { ApiClient, ApiError } from '../api/client.js';
import { processContext, runAction, type CliContext } from '../api/context.js';
import { credentialsPath, deleteCredentials, readCredentials, writeCredentials, type StoredCredentials } from '../api/credentials.js';
import { promptHidden, readAllStdin } from '../api/prompt.js';
import type { LoginAnswer } from '@rockit/contract';

interface LoginOptions {
  server?: string;
  org?: string;
  user?: string;
  passwordStdin?: boolean;
  apiKey?: string;
  apiKeyStdin?: boolean;
  json?: boolean;
}

/**
 * Registers `rockit login` and `rockit logout`.
 *
 * `login` with a password (typed without echo, or `--password-stdin`) calls `POST /be/v1/login`
 * and stores the 24-hour session; with `--api-key`/`--api-key-stdin` it checks the machine user's
 * key against the server and stores it. Either way the previous login is replaced.
 * `logout` revokes the stored session on the server (`POST /be/v1/logout`) and removes the file;
 * the file is removed even when the server cannot be reached or the session already lapsed.
 */
export function register(program: Command, ctx: CliContext = processContext()): void {
  program
    .command('login')
    .description('log in to a ROCKIT Edge server and store the session (or a machine user API key)')
    .option('--server <url>', 'server base URL (default: ROCKIT_SERVER)')
    .option('--org <name>', 'organization (default: ROCKIT_ORG)')
    .option('--user <name>', 'user name (default: ROCKIT_USER)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--api-key <key>', 'store an API key of a machine user instead of logging in with a password')
    .option('--api-key-stdin', 'read the machine user API key from standard input')
    .option('--json', 'print the result as JSON')
    .action((opts: LoginOptions) => runAction(ctx, opts.json, () => login(ctx, opts)));

  program
    .command('logout')
    .description('revoke the stored session and remove it')
    .option('--json', 'print the result as JSON')
    .action((opts: { json?: boolean }) => runAction(ctx, opts.json, () => logout(ctx, opts)));
}

async function login(ctx: CliContext, opts: LoginOptions): Promise<void> {
  const file = credentialsPath(ctx.env);
  const previous = await readCredentials(file).catch(() => null);
  const server = opts.server ?? nonEmpty(ctx.env.ROCKIT_SERVER) ?? previous?.server;
  const orgName = opts.org ?? nonEmpty(ctx.env.ROCKIT_ORG) ?? previous?.orgName;
  const username = opts.user ?? nonEmpty(ctx.env.ROCKIT_USER) ?? previous?.username;
  const missing = [!server && '--server', !orgName && '--org', !username && '--user'].filter(Boolean);
  if (!server || !orgName || !username) throw new Error(`login needs ${missing.join(', ')}`);
  if (opts.passwordStdin && opts.apiKeyStdin) throw new Error('--password-stdin and --api-key-stdin exclude each other');
  if (opts.apiKey !== undefined && (opts.passwordStdin || opts.apiKeyStdin)) {
    throw new Error('--api-key excludes --password-stdin and --api-key-stdin');
  }
  const now = Math.floor(ctx.now() / 1000);

  if (opts.apiKey !== undefined || opts.apiKeyStdin) {
    const apiKey = opts.apiKey ?? (await readAllStdin(ctx.stdin));
    if (!apiKey) throw new Error('the API key is empty');
    await checkApiKey(ctx, server, orgName, username, apiKey);
    const creds: StoredCredentials = { version: 1, server, orgName, username, apiKey, saved: now };
    await writeCredentials(file, creds);
    report(ctx, opts.json, { server, orgName, username, kind: 'apiKey', file }, `stored API key of ${username} (${orgName}) for ${server}\n`);
    return;
  }

  const password = opts.passwordStdin
    ? await readAllStdin(ctx.stdin)
    : await promptHidden(ctx.stdin, ctx.stderr, `password for ${username} (${orgName}) at ${server}: `);
  if (!password) throw new Error('the password is empty');
  const client = new ApiClient({ server, credentials: { kind: 'none' }, fetch: ctx.fetch, retryDelayMs: ctx.retryDelayMs, sleep: ctx.sleep, now: ctx.now });
  const res = await client.post<LoginAnswer>('/be/v1/login', { orgName, username, password }, { auth: false });
  const session = res.session;
  if (!session || typeof session.token !== 'string' || typeof session.expires !== 'number') {
    throw new ApiError({ status: 200, error: 'unexpected-response', message: 'login answer without session.token/expires' });
  }
  await writeCredentials(file, { version: 1, server, orgName, username, session, saved: now });
  report(
    ctx,
    opts.json,
    { server, orgName, username, kind: 'session', expires: session.expires, permissions: res.permissions, file },
    `logged in to ${server} as ${username} (${orgName}); session valid until ${new Date(session.expires * 1000).toISOString()}\n`,
  );
}

/**
 * Proves the key authenticates by reading the machine user itself (`GET /be/v1/users/{username}`).
 * A machine user without `users.read` gets `403 forbidden`, which still shows the trio was accepted;
 * a bad trio is a 401 and fails the login.
 */
async function checkApiKey(ctx: CliContext, server: string, orgName: string, username: string, apiKey: string): Promise<void> {
  const client = new ApiClient({
    server,
    credentials: { kind: 'apiKey', orgName, username, apiKey },
    fetch: ctx.fetch,
    retryDelayMs: ctx.retryDelayMs,
    sleep: ctx.sleep,
    now: ctx.now,
  });
  try {
    await client.get(`/be/v1/users/${encodeURIComponent(username)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 403 && err.error === 'forbidden') return;
    throw err;
  }
}

async function logout(ctx: CliContext, opts: { json?: boolean }): Promise<void> {
  const file = credentialsPath(ctx.env);
  const stored = await readCredentials(file).catch(() => null);
  let revoked = false;
  let warning: string | undefined;
  if (stored?.session) {
    const client = new ApiClient({ server: stored.server, credentials: { kind: 'none' }, fetch: ctx.fetch, retries: 0, sleep: ctx.sleep, now: ctx.now });
    try {
      await client.post('/be/v1/logout', undefined, { auth: false, headers: { 'x-rockit-besession-token': stored.session.token } });
      revoked = true;
    } catch (err) {
      // A lapsed or revoked session needs no revoking; anything else is worth a word.
      if (!(err instanceof ApiError && (err.error === 'token-expired' || err.error === 'token-invalid'))) {
        warning = `could not revoke the session on ${stored.server}: ${(err as Error).message}`;
        ctx.stderr.write(`warning: ${warning}\n`);
      }
    }
  }
  const removed = await deleteCredentials(file);
  report(ctx, opts.json, { removed, revoked, ...(warning ? { warning } : {}) }, removed ? 'logged out\n' : 'not logged in\n');
}

function report(ctx: CliContext, json: boolean | undefined, data: Record<string, unknown>, text: string): void {
  if (json) ctx.stdout.write(JSON.stringify({ status: 'success', ...data }, null, 2) + '\n');
  else ctx.stdout.write(text);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}
