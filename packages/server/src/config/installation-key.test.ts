import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { resolveInstallationKey } from './installation-key.js';

describe('resolveInstallationKey', () => {
  const dirs: string[] = [];
  const dataDir = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-key-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('uses ROCKIT_INSTALLATION_KEY when set (hex or base64), without touching the data folder', () => {
    const dir = dataDir();
    const hex = 'ab'.repeat(32);
    expect(resolveInstallationKey(loadConfig({ data: dir }, { ROCKIT_INSTALLATION_KEY: hex }), () => {}).toString('hex')).toBe(hex);
    const b64 = Buffer.alloc(32, 7).toString('base64');
    expect(resolveInstallationKey(loadConfig({ data: dir }, { ROCKIT_INSTALLATION_KEY: b64 }), () => {})).toEqual(Buffer.alloc(32, 7));
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('generates a key once (mode 0600) and reuses it; a corrupt file is an error, not a new key', () => {
    const dir = dataDir();
    const config = loadConfig({ data: dir }, {});
    const lines: string[] = [];
    const first = resolveInstallationKey(config, (l) => lines.push(l));
    expect(first).toHaveLength(32);
    expect(lines).toEqual([]);
    const file = path.join(dir, 'installation.key');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(resolveInstallationKey(config, () => {})).toEqual(first);
    fs.writeFileSync(file, 'garbage');
    expect(() => resolveInstallationKey(config, () => {})).toThrow(/installation key/);
  });

  it('warns when it generates a key for a PostgreSQL installation', () => {
    const lines: string[] = [];
    resolveInstallationKey(loadConfig({ data: dataDir() }, { ROCKIT_DATABASE_URL: 'postgres://u@h/db' }), (l) => lines.push(l));
    expect(lines).toEqual([expect.stringContaining('ROCKIT_INSTALLATION_KEY')]);
  });

  it('config refuses malformed keys and relative fs deployment roots', () => {
    expect(() => loadConfig({}, { ROCKIT_INSTALLATION_KEY: 'short' })).toThrow(/ROCKIT_INSTALLATION_KEY/);
    expect(() => loadConfig({}, { ROCKIT_FS_DEPLOYMENT_ROOTS: 'relative/dir' })).toThrow(/ROCKIT_FS_DEPLOYMENT_ROOTS/);
    const c = loadConfig({}, { ROCKIT_FS_DEPLOYMENT_ROOTS: ['/srv/www', '/var/cdn'].join(path.delimiter) });
    expect(c.fsDeploymentRoots).toEqual(['/srv/www', '/var/cdn']);
  });
});
