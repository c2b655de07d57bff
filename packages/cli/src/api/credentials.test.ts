import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  credentialsPath,
  deleteCredentials,
  readCredentials,
  resolveCredentials,
  sameServer,
  writeCredentials,
  type StoredCredentials,
} from './credentials.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rockit-creds-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const session: StoredCredentials = {
  version: 1,
  server: 'https://edge.example.com',
  orgName: 'acme',
  username: 'alice',
  session: { token: 'sess-1', expires: 2_000_000_000 },
  saved: 1_700_000_000,
};

describe('credentialsPath', () => {
  it('uses an absolute XDG_CONFIG_HOME, else ~/.config', () => {
    expect(credentialsPath({ XDG_CONFIG_HOME: '/x/cfg', HOME: '/home/a' })).toBe('/x/cfg/rockit/credentials.json');
    expect(credentialsPath({ HOME: '/home/a' })).toBe('/home/a/.config/rockit/credentials.json');
    // The XDG spec says relative values are ignored.
    expect(credentialsPath({ XDG_CONFIG_HOME: 'rel/cfg', HOME: '/home/a' })).toBe('/home/a/.config/rockit/credentials.json');
    expect(credentialsPath({ XDG_CONFIG_HOME: '', HOME: '/home/a' })).toBe('/home/a/.config/rockit/credentials.json');
  });
});

describe('credentials file', () => {
  it('writes mode 0600 in a 0700 folder and reads back the same login', async () => {
    const file = credentialsPath({ XDG_CONFIG_HOME: dir });
    await writeCredentials(file, session);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect((await fs.stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    expect(await readCredentials(file)).toEqual(session);
    expect((await fs.readdir(path.dirname(file))).sort()).toEqual(['credentials.json']); // no temp files left
  });

  it('replaces a world-readable file with a 0600 one', async () => {
    const file = path.join(dir, 'rockit', 'credentials.json');
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, '{}', { mode: 0o644 });
    await fs.chmod(file, 0o644);
    await writeCredentials(file, { ...session, session: undefined, apiKey: 'k' });
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect((await readCredentials(file))?.apiKey).toBe('k');
  });

  it('reads a missing file as no login and rejects a damaged one', async () => {
    const file = path.join(dir, 'rockit', 'credentials.json');
    expect(await readCredentials(file)).toBeNull();
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, 'not json');
    await expect(readCredentials(file)).rejects.toThrow(/not valid JSON/);
    await fs.writeFile(file, JSON.stringify({ version: 1, server: 'x', orgName: 'o', username: 'u' }));
    await expect(readCredentials(file)).rejects.toThrow(/not a rockit login/);
  });

  it('deletes the file and says whether there was one', async () => {
    const file = path.join(dir, 'rockit', 'credentials.json');
    await writeCredentials(file, session);
    expect(await deleteCredentials(file)).toBe(true);
    expect(await deleteCredentials(file)).toBe(false);
  });
});

describe('resolveCredentials', () => {
  it('uses the stored session when nothing overrides it', () => {
    const r = resolveCredentials({}, {}, session);
    expect(r).toMatchObject({ server: session.server, orgName: 'acme', username: 'alice', source: 'file' });
    expect(r.client).toEqual({ kind: 'session', sessionToken: 'sess-1' });
  });

  it('selects machine-user mode from env, flags overriding env', () => {
    const env = { ROCKIT_SERVER: 'http://s', ROCKIT_ORG: 'o', ROCKIT_USER: 'bot', ROCKIT_API_KEY: 'k1' };
    expect(resolveCredentials({}, env, null).client).toEqual({ kind: 'apiKey', orgName: 'o', username: 'bot', apiKey: 'k1' });
    const r = resolveCredentials({ apiKey: 'k2', user: 'bot2' }, env, session);
    expect(r.client).toEqual({ kind: 'apiKey', orgName: 'o', username: 'bot2', apiKey: 'k2' });
    expect(r.server).toBe('http://s');
  });

  it('fills a machine login from the stored file and names what is missing', () => {
    expect(resolveCredentials({ apiKey: 'k' }, {}, session).client).toEqual({ kind: 'apiKey', orgName: 'acme', username: 'alice', apiKey: 'k' });
    expect(() => resolveCredentials({ apiKey: 'k', server: 'http://s' }, {}, null)).toThrow(/--org or ROCKIT_ORG, --user or ROCKIT_USER/);
  });

  it('uses a stored API key', () => {
    const r = resolveCredentials({}, {}, { ...session, session: undefined, apiKey: 'stored' });
    expect(r.client).toEqual({ kind: 'apiKey', orgName: 'acme', username: 'alice', apiKey: 'stored' });
  });

  it('refuses to use a session for another server, org or user', () => {
    expect(() => resolveCredentials({}, {}, null)).toThrow(/not logged in/);
    expect(() => resolveCredentials({ server: 'https://other.example.com' }, {}, session)).toThrow(/logged in to https:\/\/edge/);
    expect(() => resolveCredentials({}, { ROCKIT_ORG: 'other' }, session)).toThrow(/logged in as alice of acme/);
    expect(resolveCredentials({ server: 'https://EDGE.example.com/' }, {}, session).source).toBe('file');
  });

  it('compares server URLs loosely on trailing slash and host case', () => {
    expect(sameServer('https://a.example/x/', 'https://A.example/x')).toBe(true);
    expect(sameServer('https://a.example', 'http://a.example')).toBe(false);
  });
});
