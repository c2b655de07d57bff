// Where the CLI keeps its login and how it decides which credentials a command uses.
//
// The file is `$XDG_CONFIG_HOME/rockit/credentials.json` (XDG_CONFIG_HOME only when absolute, as
// the XDG spec says) or `~/.config/rockit/credentials.json`. It holds a session token or an API
// key, so it is written mode 0600 inside a 0700 folder, through a temporary file and a rename (a
// crash never leaves half a file, and the secret is never world-readable even for a moment).
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ClientCredentials } from './client.js';
import type { TokenDto } from '@rockit/contract';

export const CREDENTIALS_FILE_VERSION = 1;

/** The stored login: a user's session or a machine user's API key, never both. */
export interface StoredCredentials {
  version: typeof CREDENTIALS_FILE_VERSION;
  server: string;
  orgName: string;
  username: string;
  /** A user's session (24 h by default), exchanged for auth tokens on demand. */
  session?: TokenDto;
  /** A machine user's API key. */
  apiKey?: string;
  /** When this login was stored (UNIX seconds). */
  saved: number;
}

/** Options a command may give; each overrides the environment, which overrides the stored file. */
export interface CredentialFlags {
  server?: string;
  org?: string;
  user?: string;
  apiKey?: string;
}

/** The credentials a command runs with. */
export interface ResolvedCredentials {
  server: string;
  orgName: string;
  username: string;
  client: ClientCredentials;
  /** Where they came from, for messages. */
  source: 'flags/env' | 'file';
}

/** Path of the credentials file for this environment. */
export function credentialsPath(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'rockit', 'credentials.json');
}

/**
 * Reads the stored login. Returns null when there is none. Throws when the file exists but is not
 * a login this version wrote (so a corrupted file is reported, not silently ignored).
 */
export async function readCredentials(file: string): Promise<StoredCredentials | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not valid JSON; remove it or run \`rockit login\` again`);
  }
  const c = data as Partial<StoredCredentials> | null;
  const ok =
    typeof c === 'object' &&
    c !== null &&
    c.version === CREDENTIALS_FILE_VERSION &&
    typeof c.server === 'string' &&
    typeof c.orgName === 'string' &&
    typeof c.username === 'string' &&
    (typeof c.apiKey === 'string' ||
      (typeof c.session === 'object' && c.session !== null && typeof c.session.token === 'string' && typeof c.session.expires === 'number'));
  if (!ok) throw new Error(`${file} is not a rockit login; remove it or run \`rockit login\` again`);
  return c as StoredCredentials;
}

/** Writes the login atomically with mode 0600 (folder 0700), replacing any previous one. */
export async function writeCredentials(file: string, creds: StoredCredentials): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.credentials.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, 'wx', 0o600);
  try {
    // The umask may have narrowed the mode further, never widened it; chmod pins it exactly.
    await handle.chmod(0o600);
    await handle.writeFile(JSON.stringify(creds, null, 2) + '\n', 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close();
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** Removes the stored login. Returns whether there was one. */
export async function deleteCredentials(file: string): Promise<boolean> {
  try {
    await fs.unlink(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Whether a stored file is readable by group or others (a reason to warn). */
export async function isTooOpen(file: string): Promise<boolean> {
  try {
    const st = await fs.stat(file);
    return (st.mode & 0o077) !== 0;
  } catch {
    return false;
  }
}

/**
 * Picks the credentials for a command. An API key (flag `--api-key` or `ROCKIT_API_KEY`) selects
 * machine-user mode: server, org and user then come from flags, else `ROCKIT_SERVER`/`ROCKIT_ORG`/
 * `ROCKIT_USER`, else the stored login, and all three must be known. Otherwise the stored login
 * is used; a `--server`/`ROCKIT_SERVER` naming another server than the stored one is an error
 * (that session would not be valid there). Throws with a message saying what is missing.
 */
export function resolveCredentials(
  flags: CredentialFlags,
  env: NodeJS.ProcessEnv,
  stored: StoredCredentials | null,
): ResolvedCredentials {
  const pick = (flag: string | undefined, envName: string): string | undefined => {
    if (flag !== undefined && flag !== '') return flag;
    const v = env[envName];
    return v !== undefined && v !== '' ? v : undefined;
  };
  const apiKey = pick(flags.apiKey, 'ROCKIT_API_KEY');
  const server = pick(flags.server, 'ROCKIT_SERVER');
  const org = pick(flags.org, 'ROCKIT_ORG');
  const user = pick(flags.user, 'ROCKIT_USER');

  if (apiKey !== undefined) {
    const s = server ?? stored?.server;
    const o = org ?? stored?.orgName;
    const u = user ?? stored?.username;
    const missing = [
      s === undefined ? '--server or ROCKIT_SERVER' : null,
      o === undefined ? '--org or ROCKIT_ORG' : null,
      u === undefined ? '--user or ROCKIT_USER' : null,
    ].filter((x): x is string => x !== null);
    if (missing.length > 0 || s === undefined || o === undefined || u === undefined) {
      throw new Error(`an API key needs the server, organization and machine user too: missing ${missing.join(', ')}`);
    }
    return { server: s, orgName: o, username: u, client: { kind: 'apiKey', orgName: o, username: u, apiKey }, source: 'flags/env' };
  }

  if (!stored) {
    throw new Error('not logged in: run `rockit login`, or set ROCKIT_SERVER, ROCKIT_ORG, ROCKIT_USER and ROCKIT_API_KEY');
  }
  if (server !== undefined && !sameServer(server, stored.server)) {
    throw new Error(`logged in to ${stored.server}, not ${server}: run \`rockit login --server ${server}\``);
  }
  if ((org !== undefined && org !== stored.orgName) || (user !== undefined && user !== stored.username)) {
    throw new Error(
      `logged in as ${stored.username} of ${stored.orgName}; run \`rockit login\` to switch, or give an API key for another user`,
    );
  }
  const client: ClientCredentials = stored.apiKey
    ? { kind: 'apiKey', orgName: stored.orgName, username: stored.username, apiKey: stored.apiKey }
    : { kind: 'session', sessionToken: stored.session!.token };
  return { server: stored.server, orgName: stored.orgName, username: stored.username, client, source: 'file' };
}

/** Compares server URLs ignoring a trailing slash and letter case of scheme and host. */
export function sameServer(a: string, b: string): boolean {
  const norm = (s: string) => {
    try {
      const u = new URL(s);
      return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
    } catch {
      return s.replace(/\/+$/, '');
    }
  };
  return norm(a) === norm(b);
}
