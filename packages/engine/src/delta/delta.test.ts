import { createHash } from 'node:crypto';
import { readFile, rm, writeFile, appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkLengths } from '../chunker/fastcdc.js';
import { DEFAULT_CHUNKING } from '../format/constants.js';
import { packTar } from '../tar/tar-writer.js';
import { makeTempDir, removeDir, Rng, writeRandomTree } from '../image/test-support/random-tree.js';
import { assembleDelta } from './assemble.js';
import { DeltaError } from './errors.js';
import { makeDelta, planChunkIds, scanBuild, writeDelta } from './make.js';
import { readDelta } from './read.js';
import { collect, listEntries, pieces } from './test-support.js';

let tmp: string;
let src: string;

beforeAll(async () => {
  tmp = await makeTempDir('delta');
  src = join(tmp, 'src');
  await writeRandomTree(src, 77, { files: 20, maxFileBytes: 400_000 });
});
afterAll(async () => {
  await removeDir(tmp);
});

/** A lookup over the chunks of a plan's files, as the server has them. */
function lookupFrom(chunks: Map<string, Buffer>) {
  return async (hash: Uint8Array) => chunks.get(Buffer.from(hash).toString('hex'));
}

async function chunkStore(entries: Awaited<ReturnType<typeof listEntries>>): Promise<Map<string, Buffer>> {
  const m = new Map<string, Buffer>();
  for (const e of entries) {
    if (e.type !== 'file') continue;
    const data = await readFile(e.source);
    let off = 0;
    for (const len of chunkLengths(data, DEFAULT_CHUNKING)) {
      const c = data.subarray(off, off + len);
      m.set(createHash('sha256').update(c).digest('hex'), Buffer.from(c));
      off += len;
    }
  }
  return m;
}

describe('delta: make → assemble', () => {
  it('with nothing known: the assembled tar equals the tar the writer streams, byte for byte', async () => {
    const entries = await listEntries(src);
    const out = join(tmp, 'none.rkdl');
    const made = await makeDelta(entries, new Set(), out);
    expect(made.refChunks).toBe(0);
    expect(made.literalChunks).toBe(made.plan.chunkCount);
    const tar = await collect(assembleDelta(pieces(await readFile(out), 4096), async () => undefined));
    const expected = await collect(packTar(entries));
    expect(tar.length).toBe(made.tarSizeBytes);
    expect(tar.equals(expected)).toBe(true);
  });

  it('after a small change: only the changed chunks travel; the tar is the new build exactly', async () => {
    const before = await listEntries(src);
    const store = await chunkStore(before);
    const changed = join(tmp, 'changed');
    await mkdir(changed);
    await writeRandomTree(changed, 77, { files: 20, maxFileBytes: 400_000 });
    const big = (await listEntries(changed)).filter((e) => e.type === 'file').sort((a, b) => b.size - a.size)[0];
    const data = await readFile(big.source);
    data.set(new Rng(5).bytes(100), Math.floor(data.length / 2));
    await writeFile(big.source, data);
    await appendFile(join(changed, 'config', 'new.cfg'), 'fresh\n').catch(async () => writeFile(join(changed, 'new.cfg'), 'fresh\n'));
    const entries = await listEntries(changed);
    const plan = await scanBuild(entries);
    const known = new Set(planChunkIds(plan).filter((id) => store.has(id)));
    const out = join(tmp, 'small.rkdl');
    const res = await writeDelta(plan, known, out);
    expect(res.refChunks).toBeGreaterThan(0);
    expect(res.literalChunks).toBeGreaterThan(0);
    expect(res.literalRawBytes).toBeLessThan(plan.contentBytes * 0.25);
    const tar = await collect(assembleDelta(pieces(await readFile(out), 65536), lookupFrom(store), { parallelLookups: 3 }));
    expect(tar.equals(await collect(packTar(entries)))).toBe(true);
  });

  it('reads the same through any split of the input', async () => {
    const entries = await listEntries(src);
    const store = await chunkStore(entries);
    const out = join(tmp, 'all.rkdl');
    const made = await makeDelta(entries, new Set(store.keys()), out);
    expect(made.literalChunks).toBe(0);
    const bytes = await readFile(out);
    const items1 = await collect((async function* () { for await (const i of readDelta(pieces(bytes, 1))) yield Buffer.from(JSON.stringify(i.kind)); })());
    const items2 = await collect((async function* () { for await (const i of readDelta(pieces(bytes, 100000))) yield Buffer.from(JSON.stringify(i.kind)); })());
    expect(items1.equals(items2)).toBe(true);
  });

  it('a file edited between scan and write fails the write and leaves no file', async () => {
    const dir = join(tmp, 'edit');
    await mkdir(dir);
    await writeFile(join(dir, 'a.bin'), new Rng(9).bytes(300_000));
    const entries = await listEntries(dir);
    const plan = await scanBuild(entries);
    await writeFile(join(dir, 'a.bin'), new Rng(10).bytes(300_000));
    const out = join(tmp, 'edit.rkdl');
    await expect(writeDelta(plan, new Set(), out)).rejects.toThrow(/changed since it was scanned/);
    await expect(readFile(out)).rejects.toThrow();
    await rm(dir, { recursive: true });
  });

  it('golden: chunk boundaries, ids and the delta bytes of a fixed build are pinned', async () => {
    const dir = join(tmp, 'golden');
    await mkdir(join(dir, 'data'), { recursive: true });
    await writeFile(join(dir, 'data', 'pak0.bin'), new Rng(2026).bytes(700_000));
    await writeFile(join(dir, 'readme.txt'), 'hello delta\n');
    const entries = (await listEntries(dir)).map((e) => ({ ...e, mtime: 1_700_000_000, mode: e.type === 'directory' ? 0o755 : 0o644 }));
    const plan = await scanBuild(entries);
    expect(plan.files.map((f) => f?.lengths ?? null)).toMatchSnapshot();
    const ids = planChunkIds(plan);
    const out = join(tmp, 'golden.rkdl');
    const res = await writeDelta(plan, new Set(ids.slice(0, 3)), out);
    expect({ ids, res }).toMatchSnapshot();
    expect(createHash('sha256').update(await readFile(out)).digest('hex')).toMatchSnapshot();
  });

  it('unknown chunk: the stream fails with unknown-chunk naming it', async () => {
    const entries = await listEntries(src);
    const store = await chunkStore(entries);
    const out = join(tmp, 'unknown.rkdl');
    await makeDelta(entries, new Set(store.keys()), out);
    const victim = [...store.keys()][3];
    store.delete(victim);
    const err = await collect(assembleDelta(pieces(await readFile(out), 65536), lookupFrom(store))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeltaError);
    expect((err as DeltaError).code).toBe('unknown-chunk');
    expect((err as DeltaError).chunkId).toBe(victim);
  });

  it('a lookup answering the wrong length is refused as unknown-chunk', async () => {
    const entries = await listEntries(src);
    const store = await chunkStore(entries);
    const out = join(tmp, 'short.rkdl');
    await makeDelta(entries, new Set(store.keys()), out);
    const err = await collect(assembleDelta(pieces(await readFile(out), 65536), async () => Buffer.alloc(3))).catch((e: unknown) => e);
    expect((err as DeltaError).code).toBe('unknown-chunk');
  });
});
