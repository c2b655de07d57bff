import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dropImageCache, holdWorkFolder, sweepWorkFolder } from './work-sweep.js';

describe('sweepWorkFolder', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rockit-sweep-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  const make = async (...rel: string[]): Promise<void> => {
    await mkdir(join(dir, ...rel), { recursive: true });
    await writeFile(join(dir, ...rel, 'x'), 'x');
  };

  it('removes scratch folders nobody holds and caches of deleted orgs and apps; keeps held and live ones', async () => {
    await make('mkraw-0001-aaaaaaaaaaaa');
    await make('mkraw-0002-bbbbbbbbbbbb');
    await make('unrelated');
    await make('image-cache', 'org1', 'app1', '0001');
    await make('image-cache', 'org1', 'gone', '0001');
    await make('image-cache', 'org2', 'app', '0001');
    await make('image-cache', 'org3', 'busy', '0001');
    const release = holdWorkFolder(join(dir, 'mkraw-0002-bbbbbbbbbbbb'));
    const releaseCache = holdWorkFolder(join(dir, 'image-cache', 'org3', 'busy'));
    try {
      const { removed } = await sweepWorkFolder(dir, async () => ({ orgs: new Set(['org1']), apps: new Set(['org1/app1']) }));
      expect(removed.sort()).toEqual(['image-cache/org1/gone', 'image-cache/org2', 'mkraw-0001-aaaaaaaaaaaa']);
      expect(existsSync(join(dir, 'mkraw-0002-bbbbbbbbbbbb', 'x'))).toBe(true);
      expect(existsSync(join(dir, 'image-cache', 'org3', 'busy', '0001', 'x'))).toBe(true);
      expect(existsSync(join(dir, 'image-cache', 'org1', 'app1', '0001', 'x'))).toBe(true);
      expect(existsSync(join(dir, 'unrelated', 'x'))).toBe(true);
      await dropImageCache(dir, 'org3', 'busy');
      expect(existsSync(join(dir, 'image-cache', 'org3', 'busy'))).toBe(true);
    } finally {
      release();
      release(); // a second call changes nothing
      releaseCache();
    }
    const again = await sweepWorkFolder(dir, async () => ({ orgs: new Set(['org1']), apps: new Set(['org1/app1']) }));
    expect(again.removed.sort()).toEqual(['image-cache/org3', 'mkraw-0002-bbbbbbbbbbbb']);
    await dropImageCache(dir, 'org1', 'app1');
    expect(existsSync(join(dir, 'image-cache', 'org1', 'app1'))).toBe(false);
    await dropImageCache(dir, 'org1');
    expect(existsSync(join(dir, 'image-cache', 'org1'))).toBe(false);
  });

  it('asks for the live apps only when there is a cache, and copes with a missing folder', async () => {
    let asked = 0;
    const live = async () => {
      asked++;
      return { orgs: new Set<string>(), apps: new Set<string>() };
    };
    expect(await sweepWorkFolder(join(dir, 'missing'), live)).toEqual({ removed: [] });
    expect(asked).toBe(0);
  });
});
