// What the API commands need from the outside world, in one object so tests can run a command
// in-process with their own environment, streams and clock, and read its exit code.
import { InvalidArgumentError, type Command } from 'commander';
import { ApiClient } from './client.js';
import { describeError, errorToJson } from './output.js';
import { credentialsPath, isTooOpen, readCredentials, resolveCredentials, type CredentialFlags, type ResolvedCredentials } from './credentials.js';

export interface OutputStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface InputStream extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?: (mode: boolean) => unknown;
}

export interface CliContext {
  env: NodeJS.ProcessEnv;
  stdout: OutputStream;
  stderr: OutputStream;
  stdin: InputStream;
  fetch?: typeof fetch;
  /** Milliseconds between task polls. */
  pollIntervalMs: number;
  /** First retry delay of the API client. */
  retryDelayMs: number;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
  setExitCode: (code: number) => void;
  /**
   * Runs `handler` on Ctrl-C (SIGINT) instead of exiting, until the returned function is called.
   * Absent: Ctrl-C keeps its default meaning.
   */
  onInterrupt?: (handler: () => void) => () => void;
}

/** The context of a real run: process streams and environment. */
export function processContext(): CliContext {
  return {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    pollIntervalMs: 1000,
    retryDelayMs: 500,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    now: Date.now,
    setExitCode: (code) => {
      process.exitCode = code;
    },
    onInterrupt: (handler) => {
      process.once('SIGINT', handler);
      return () => process.removeListener('SIGINT', handler);
    },
  };
}

/** Options every API command accepts to override the stored login. */
export interface ConnectionOptions extends CredentialFlags {
  json?: boolean;
}

/** Resolves credentials (flags > env > stored login) and builds a client. Throws when there are none. */
export async function connect(ctx: CliContext, flags: CredentialFlags): Promise<{ client: ApiClient; who: ResolvedCredentials }> {
  const file = credentialsPath(ctx.env);
  const stored = await readCredentials(file);
  if (stored && (await isTooOpen(file))) {
    ctx.stderr.write(`warning: ${file} is readable by other users; run: chmod 600 ${file}\n`);
  }
  const who = resolveCredentials(flags, ctx.env, stored);
  const client = new ApiClient({
    server: who.server,
    credentials: who.client,
    fetch: ctx.fetch,
    retryDelayMs: ctx.retryDelayMs,
    sleep: ctx.sleep,
    now: ctx.now,
  });
  return { client, who };
}

/**
 * Runs a command body and turns any failure into a message on stderr (or a JSON error object on
 * stdout with `--json`) and exit code 1, so scripts can rely on both.
 */
export async function runAction(ctx: CliContext, json: boolean | undefined, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (json) ctx.stdout.write(JSON.stringify(errorToJson(err), null, 2) + '\n');
    else ctx.stderr.write(describeError(err) + '\n');
    ctx.setExitCode(1);
  }
}

/** Parses a positive integer option strictly ("3", not "3x" or "3.5"). */
export function parsePositiveInt(name: string): (value: string) => number {
  return (value: string) => {
    if (!/^[0-9]+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
      throw new InvalidArgumentError(`${name} must be a positive integer, got "${value}"`);
    }
    return Number(value);
  };
}

/** Adds the options that override the stored login (`--server`, `--org`, `--user`, `--api-key`). */
export function withConnectionOptions(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'server base URL (default: ROCKIT_SERVER or the stored login)')
    .option('--org <name>', 'organization (default: ROCKIT_ORG or the stored login)')
    .option('--user <name>', 'user name (default: ROCKIT_USER or the stored login)')
    .option('--api-key <key>', 'API key of a machine user (default: ROCKIT_API_KEY)');
}
