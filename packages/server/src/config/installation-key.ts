import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseInstallationKey } from '../domain/secret-box.js';
import type { Config } from './config.js';

export const INSTALLATION_KEY_FILE = 'installation.key';

/**
 * The installation key that seals secrets at rest (deployment S3 secret keys, download-auth
 * keys; api.md §9.1): ROCKIT_INSTALLATION_KEY when set (64 hex digits or base64 of 32 bytes);
 * otherwise `<dataDir>/installation.key`, generated once (mode 0600) and reused on every start.
 *
 * Losing or changing the key makes every sealed secret unreadable (deployments must then be
 * given their secrets again). Nodes of a cluster must share one key: set the variable there;
 * `print` is told when a key is generated on a PostgreSQL installation, where that is a mistake
 * unless there is a single node. Throws when the stored file is not a valid key.
 */
export function resolveInstallationKey(config: Readonly<Config>, print: (line: string) => void): Buffer {
  if (config.installationKey) return parseInstallationKey(config.installationKey);
  const file = path.join(config.dataDir, INSTALLATION_KEY_FILE);
  fs.mkdirSync(config.dataDir, { recursive: true });
  try {
    const stored = fs.readFileSync(file, 'utf8');
    try {
      return parseInstallationKey(stored);
    } catch {
      throw new Error(`${file} does not hold a valid installation key (64 hex digits); restore it from a backup`);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const key = randomBytes(32);
  try {
    // 'wx': never overwrite a key another process generated at the same moment; use theirs.
    fs.writeFileSync(file, key.toString('hex') + '\n', { flag: 'wx', mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return parseInstallationKey(fs.readFileSync(file, 'utf8'));
    throw e;
  }
  if (config.database.kind === 'pg') {
    print(`Generated an installation key in ${file}; with several server nodes, set ROCKIT_INSTALLATION_KEY to one shared key instead`);
  }
  return key;
}
