// openImage with a manifest hint (release.json names the manifest): read together with image.json, checked
// like any manifest, read again when the hint does not work out.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CorruptionError } from '../errors.js';
import { IMAGE_JSON_NAME } from '../format/constants.js';
import { buildImage } from './build.js';
import { FolderImageSource, type ImageSource } from './image-source.js';
import { openImage } from './reader.js';
import { makeTempDir, removeDir, writeRandomTree } from './test-support/random-tree.js';

let tmp: string;
let img: string;
let manifestName: string;
let manifestSize: number;

beforeAll(async () => {
  tmp = await makeTempDir('open-image');
  await writeRandomTree(join(tmp, 'src'), 77, { files: 12, maxFileBytes: 40_000 });
  img = join(tmp, 'img');
  await buildImage({ input: join(tmp, 'src'), outDir: img, threads: 0 });
  const j = JSON.parse(await readFile(join(img, IMAGE_JSON_NAME), 'utf8'));
  manifestName = j.manifest.name;
  manifestSize = j.manifest.sizeBytes;
});
afterAll(async () => {
  await removeDir(tmp);
});

/** A real folder source that logs the reads asked for, holds image.json back until released, and can damage reads. */
class LoggingSource implements ImageSource {
  readonly location: string;
  readonly asked: string[] = [];
  private readonly inner: FolderImageSource;
  releaseImageJson!: () => void;
  private readonly imageJsonGate = new Promise<void>((r) => (this.releaseImageJson = r));

  constructor(dir: string, private readonly damage: (name: string, n: number, b: Uint8Array) => Uint8Array = (_n, _i, b) => b) {
    this.inner = new FolderImageSource(dir);
    this.location = this.inner.location;
  }

  async readFile(name: string, maxBytes: number): Promise<Uint8Array> {
    this.asked.push(name);
    const n = this.asked.filter((a) => a === name).length;
    if (name === IMAGE_JSON_NAME) await this.imageJsonGate;
    return this.damage(name, n, await this.inner.readFile(name, maxBytes));
  }

  readRange(name: string, offset: number, length: number): Promise<Uint8Array> {
    return this.inner.readRange(name, offset, length);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('openImage with a manifest hint', () => {
  it('asks for the manifest before image.json has arrived, and opens the same image', async () => {
    const folder = new FolderImageSource(img);
    const plain = await openImage(folder);
    await folder.close();
    const s = new LoggingSource(img);
    const opened = openImage(s, { manifestHint: { name: manifestName, maxBytes: 1 << 20 } });
    await new Promise((r) => setTimeout(r, 20));
    expect(s.asked).toEqual([manifestName, IMAGE_JSON_NAME]); // both in flight, image.json held back
    s.releaseImageJson();
    const r = await opened;
    expect(r.manifest).toEqual(plain.manifest);
    expect(s.asked).toEqual([manifestName, IMAGE_JSON_NAME]); // nothing read twice
    await s.close();
  });

  it('reads the manifest image.json names when the hint names another file', async () => {
    const s = new LoggingSource(img);
    s.releaseImageJson();
    const r = await openImage(s, { manifestHint: { name: 'manifest-00000000000000000000000000000000.rkm', maxBytes: 1 << 20 } });
    expect(r.manifest.chunks.length).toBeGreaterThan(0);
    expect(s.asked).toEqual(['manifest-00000000000000000000000000000000.rkm', IMAGE_JSON_NAME, manifestName]);
    await s.close();
  });

  it('reads again when the early read failed (bound too small); a hostile name is refused like any read', async () => {
    const s = new LoggingSource(img);
    s.releaseImageJson();
    const r = await openImage(s, { manifestHint: { name: manifestName, maxBytes: manifestSize - 1 } });
    expect(r.manifest.chunks.length).toBeGreaterThan(0);
    expect(s.asked).toEqual([manifestName, IMAGE_JSON_NAME, manifestName]);
    const h = new LoggingSource(img);
    h.releaseImageJson();
    const r2 = await openImage(h, { manifestHint: { name: '../../etc/passwd', maxBytes: 1 << 20 } });
    expect(r2.manifest).toEqual(r.manifest);
    await Promise.all([s.close(), h.close()]);
  });

  it('checks hinted bytes against image.json: damaged ones are refused, not trusted', async () => {
    const s = new LoggingSource(img, (name, _n, b) => {
      if (name !== manifestName) return b;
      const c = Uint8Array.from(b);
      c[c.length - 1] ^= 1;
      return c;
    });
    s.releaseImageJson();
    await expect(openImage(s, { manifestHint: { name: manifestName, maxBytes: 1 << 20 } })).rejects.toBeInstanceOf(CorruptionError);
    await s.close();
  });
});
