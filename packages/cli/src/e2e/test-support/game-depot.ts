/**
 * Published game builds for the launcher end-to-end tests: small deterministic builds turned into images and
 * patches by the engine, laid out in a depot folder exactly as the server's deploy step does
 * (`dxf/{org}/{app}/{build:04}/{dxf}/`, `pat/{org}/{app}/{to:04}/{from:04}/`, `dxf/{org}/{app}/release.json`).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { buildImage, makePatch, repackImage, type LoadProfile } from '@rockit/engine';

/** Deterministic pseudo-random bytes (xorshift), so builds are reproducible and incompressible. */
export function noise(seed: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i <= size - 4 ? i : size - 4);
  }
  return out;
}

/** Writes build `n` (1, 2, 3 ...) of a small game into `dir`: each build edits, adds and removes files. */
export async function writeGame(dir: string, n: number, bigBytes = 6 * 1024 * 1024): Promise<void> {
  await fs.mkdir(path.join(dir, 'bin'), { recursive: true });
  await fs.mkdir(path.join(dir, 'data', 'levels'), { recursive: true });
  const exe = noise(7, 300_000);
  exe.write(`build ${n}`, 1000);
  await fs.writeFile(path.join(dir, 'bin', 'game'), exe, { mode: 0o755 });
  const assets = noise(11, bigBytes);
  if (n >= 2) noise(100 + n, 64 * 1024).copy(assets, Math.floor(bigBytes / 2)); // an edit in the middle
  await fs.writeFile(path.join(dir, 'data', 'assets.pak'), assets);
  if (n === 1) await fs.writeFile(path.join(dir, 'data', 'levels', 'l1.dat'), noise(13, 700_000));
  if (n >= 2) await fs.writeFile(path.join(dir, 'data', 'levels', `l${n}.dat`), noise(13 + n, 500_000));
  await fs.writeFile(path.join(dir, 'config.ini'), `[game]\nbuild=${n}\nlanguage=en\n`);
  await fs.writeFile(path.join(dir, 'data', 'empty.txt'), '');
  await fs.symlink('bin/game', path.join(dir, 'start'));
}

export interface Published {
  buildId: number;
  dxfName: string;
  imageDir: string;
  imagePath: string;
  manifestName: string;
  storedBytes: number;
}

async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += (await fs.stat(path.join(e.parentPath, e.name))).size;
  return n;
}

/**
 * Publishes the image of `gameDir` as build `buildId` under `depot` (optionally trained: same chunk order with
 * `profile`), with patches from `patchFrom` builds, and rewrites release.json last.
 */
export async function publish(
  depot: string,
  org: string,
  app: string,
  gameDir: string,
  buildId: number,
  opts: { profile?: LoadProfile; patchFrom?: Published[]; work: string },
): Promise<Published> {
  const training = opts.profile ? 1 : 0;
  const dxfName = `b${String(buildId).padStart(4, '0')}-t${String(training).padStart(3, '0')}`;
  const imagePath = `dxf/${org}/${app}/${String(buildId).padStart(4, '0')}/${dxfName}/`;
  const imageDir = path.join(depot, imagePath);
  await fs.mkdir(path.dirname(imageDir), { recursive: true });
  if (opts.profile) {
    const plain = path.join(opts.work, `plain-${buildId}`);
    await buildImage({ input: gameDir, outDir: plain });
    const n = JSON.parse(await fs.readFile(path.join(plain, 'image.json'), 'utf8')).chunkCount as number;
    await repackImage({ source: plain, outDir: imageDir, order: Array.from({ length: n }, (_, i) => i), profile: opts.profile });
  } else {
    await buildImage({ input: gameDir, outDir: imageDir });
  }
  const imageJson = JSON.parse(await fs.readFile(path.join(imageDir, 'image.json'), 'utf8'));
  const pub: Published = { buildId, dxfName, imageDir, imagePath, manifestName: imageJson.manifest.name, storedBytes: imageJson.storedBytes };
  const patches = [];
  for (const from of opts.patchFrom ?? []) {
    const p = `pat/${org}/${app}/${String(buildId).padStart(4, '0')}/${String(from.buildId).padStart(4, '0')}/`;
    await makePatch({ from: from.imageDir, to: imageDir, outDir: path.join(depot, p), level: 3 });
    patches.push({ fromBuildId: from.buildId, toBuildId: buildId, path: p, sizeBytes: await folderBytes(path.join(depot, p)) });
  }
  await writeRelease(depot, org, app, pub, patches);
  return pub;
}

export async function writeRelease(depot: string, org: string, app: string, pub: Published, patches: Array<{ fromBuildId: number; toBuildId: number; path: string; sizeBytes: number }>): Promise<void> {
  const release = {
    format: 'rockit-release',
    formatVersion: 1,
    orgName: org,
    appName: app,
    buildId: pub.buildId,
    buildName: `1.0.${pub.buildId}`,
    dxfName: pub.dxfName,
    image: { path: pub.imagePath, manifest: pub.manifestName, sizeBytes: await folderBytes(pub.imageDir) },
    patches,
    created: 1764370000 + pub.buildId,
  };
  const file = path.join(depot, `dxf/${org}/${app}/release.json`);
  await fs.writeFile(file + '.tmp', JSON.stringify(release));
  await fs.rename(file + '.tmp', file);
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
