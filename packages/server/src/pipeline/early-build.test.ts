// Early builds (early-build.ts) against the real engine: the image built from a PUT's bytes is the one mkraw
// would build; anything that does not match or does not finish leaves no folder behind.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { buildImage } from '@rockit/engine';

import { EarlyBuilds, type EarlyFeed } from './early-build.js';
import { makeTar, makeTempDir, pseudoRandomBytes, sha256Hex } from './test-support/fixtures.js';

/** Feeds `bytes` in pieces of `piece` bytes, as a socket would. */
async function feed(f: EarlyFeed, bytes: Buffer, piece = 7000): Promise<void> {
  for (let at = 0; at < bytes.length; at += piece) await f.write(bytes.subarray(at, at + piece));
}

describe('EarlyBuilds', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let work: string;
  let tar: Buffer;

  beforeEach(async () => {
    tmp = await makeTempDir('early-build');
    work = join(tmp.dir, 'mkraw');
    tar = await makeTar([
      { name: 'game/', type: 'directory' },
      { name: 'game/data.bin', content: pseudoRandomBytes(300_000, 1) },
      { name: 'game/run.sh', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
    ]);
  });

  afterEach(async () => {
    await tmp.cleanup();
  });

  const folders = async (): Promise<string[]> => (existsSync(work) ? readdir(work) : []);

  it('gives mkraw the image of exactly the uploaded bytes, the same image a build of the tar makes', async () => {
    const early = new EarlyBuilds({ workDir: work });
    const f = early.start('t1')!;
    await feed(f, tar);
    f.finish(sha256Hex(tar));
    const got = await early.take('t1', sha256Hex(tar));
    expect(got).toBeDefined();
    const again = await buildImage({ input: Readable.from([tar]), outDir: join(tmp.dir, 'again') });
    expect(got!.result.manifestName).toBe(again.manifestName);
    expect(existsSync(join(got!.imageDir, again.manifestName))).toBe(true);
    expect(early.taken).toBe(1);
    await got!.release();
    expect(await folders()).toEqual([]);
    expect(await early.take('t1', sha256Hex(tar))).toBeUndefined(); // taken once
  });

  it('drops the early image when the bytes mkraw accepts are other bytes, or unknown', async () => {
    const early = new EarlyBuilds({ workDir: work });
    for (const other of ['0'.repeat(64), null]) {
      const f = early.start('t2')!;
      await feed(f, tar);
      f.finish(sha256Hex(tar));
      expect(await early.take('t2', other)).toBeUndefined();
      expect(await folders()).toEqual([]);
    }
  });

  it('a broken PUT, a replaced PUT or a tar the engine refuses leave nothing; the upload never waits on a dead build', async () => {
    const early = new EarlyBuilds({ workDir: work, maxRunning: 2 });
    const broken = early.start('t3')!;
    await feed(broken, tar.subarray(0, 5000));
    broken.abort();
    expect(await early.take('t3', sha256Hex(tar))).toBeUndefined();

    const first = early.start('t4')!;
    await feed(first, tar.subarray(0, 5000));
    const second = early.start('t4')!; // the client started the PUT over
    await feed(second, tar);
    second.finish(sha256Hex(tar));
    first.finish(sha256Hex(tar)); // the replaced PUT's late end changes nothing
    const got = await early.take('t4', sha256Hex(tar));
    expect(got).toBeDefined();
    await got!.release();

    const garbage = pseudoRandomBytes(4 * 1024 * 1024, 9); // not a tar: the engine stops early
    const bad = early.start('t5')!;
    await feed(bad, garbage, 64 * 1024); // must not hang once the build has failed
    bad.finish(sha256Hex(garbage));
    expect(await early.take('t5', sha256Hex(garbage))).toBeUndefined();
    for (let i = 0; i < 50 && (await folders()).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await folders()).toEqual([]);
  });

  it('runs at most maxRunning builds; an early image nobody takes is dropped after keepMs; close() removes the rest', async () => {
    const early = new EarlyBuilds({ workDir: work, maxRunning: 1, keepMs: 50 });
    const a = early.start('a')!;
    expect(early.start('b')).toBeUndefined();
    await feed(a, tar);
    a.finish(sha256Hex(tar));
    await new Promise((r) => setTimeout(r, 1500)); // built, then not taken for keepMs
    expect(await folders()).toEqual([]);
    expect(await early.take('a', sha256Hex(tar))).toBeUndefined();

    const c = early.start('c')!;
    await feed(c, tar.subarray(0, 3000));
    await early.close();
    expect(await folders()).toEqual([]);
  });
});
