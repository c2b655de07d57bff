import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBytes, generateSeries, readGpakToc, seriesModels } from './index.js';
import type { SeriesChange, SeriesDescription } from './index.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gamegen-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** sha256 over (relative path, mode bit, content) of every file under root, in sorted order. */
function treeHash(root: string): string {
  const h = createHash('sha256');
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = statSync(join(root, p));
      if (st.isDirectory()) walk(p);
      else h.update(`${p}\0${st.mode & 0o111 ? 'x' : '-'}\0`).update(readFileSync(join(root, p)));
    }
  };
  walk('');
  return h.digest('hex');
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('generateSeries determinism', () => {
  it('gives the same bytes for the same seed (pinned) and different bytes for another seed', async () => {
    const a = tempDir();
    const b = tempDir();
    const c = tempDir();
    const opts = { seed: 42, sizeBytes: 256 * 1024, versions: 3, tar: true };
    await generateSeries({ ...opts, outDir: a });
    await generateSeries({ ...opts, outDir: b });
    await generateSeries({ ...opts, seed: 43, outDir: c });
    for (const v of ['v1', 'v2', 'v3']) {
      expect(treeHash(join(a, v))).toBe(treeHash(join(b, v)));
      expect(sha(readFileSync(join(a, `${v}.tar`)))).toBe(sha(readFileSync(join(b, `${v}.tar`))));
    }
    expect(treeHash(join(a, 'v1'))).not.toBe(treeHash(join(c, 'v1')));
    // Pinned: a change to any generator shows up here. Update deliberately (and say so in CHANGELOG).
    expect({
      v1: treeHash(join(a, 'v1')),
      v3: treeHash(join(a, 'v3')),
      tar3: sha(readFileSync(join(a, 'v3.tar'))),
    }).toEqual({
      v1: 'e0c615072ad35a12e8a4a6ef0ed06e6d6f97fa1c11ba8170b0b05550b8cc7953',
      v3: 'e4eb3b67c579a4b7232bbc5ae943cb81c3e6b6f4c4f3f406f75aea39766ec512',
      tar3: '284f931984b176f5f7f3c872654c57d8df4756767b644b737710d4a60213ab24',
    });
  });

  it('writes tars that tar -x unpacks into the same folder', async () => {
    const out = tempDir();
    await generateSeries({ seed: 5, sizeBytes: 200 * 1024, versions: 2, tar: true, outDir: out });
    const x = tempDir();
    execFileSync('tar', ['-xf', join(out, 'v2.tar'), '-C', x]);
    expect(treeHash(x)).toBe(treeHash(join(out, 'v2')));
  });

  it('hits the requested size within a few percent', () => {
    for (const size of [1024 * 1024, 50 * 1024 * 1024]) {
      const { models } = seriesModels(9, size, 1);
      const total = buildBytes(models[0]);
      expect(Math.abs(total - size) / size).toBeLessThan(0.03);
    }
  });
});

describe('generateSeries changes', () => {
  let out: string;
  let desc: SeriesDescription;
  const changesOf = (to: number) => desc.changes.find((c) => c.to === to)!.changes;
  const file = (v: number, p: string) => readFileSync(join(out, `v${v}`, ...p.split('/')));
  const byType = <T extends SeriesChange['type']>(to: number, type: T) =>
    changesOf(to).filter((c): c is Extract<SeriesChange, { type: T }> => c.type === type);

  beforeAll(async () => {
    out = tempDir();
    desc = await generateSeries({ seed: 7, sizeBytes: 6 * 1024 * 1024, versions: 3, outDir: out });
  });

  it('writes series.json matching the folders', () => {
    expect(JSON.parse(readFileSync(join(out, 'series.json'), 'utf8'))).toEqual(desc);
    for (const v of desc.versions) {
      let bytes = 0;
      let files = 0;
      const walk = (d: string) => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          if (e.isDirectory()) walk(join(d, e.name));
          else {
            files++;
            bytes += statSync(join(d, e.name)).size;
          }
        }
      };
      walk(join(out, v.dir));
      expect({ files, bytes }).toEqual({ files: v.files, bytes: v.sizeBytes });
    }
  });

  it('inserts assets mid-archive, shifting the following assets byte-identically', async () => {
    const [ins] = byType(2, 'archive-insert');
    expect(ins).toBeDefined();
    const old = (await readGpakToc(join(out, 'v1', ins.path)))!;
    const now = (await readGpakToc(join(out, 'v2', ins.path)))!;
    const i = now.entries.findIndex((e) => e.name === ins.asset);
    expect(i).toBe(ins.index);
    expect(old.entries.some((e) => e.name === ins.asset)).toBe(false);
    const edited = new Set(byType(2, 'archive-edit').map((e) => e.asset));
    const follower = now.entries.slice(i + 1).find((e) => !edited.has(e.name))!;
    const before = old.entries.find((e) => e.name === follower.name)!;
    expect(follower.offsetBytes).toBeGreaterThan(before.offsetBytes);
    const a = file(1, ins.path).subarray(before.offsetBytes, before.offsetBytes + before.sizeBytes);
    const b = file(2, ins.path).subarray(follower.offsetBytes, follower.offsetBytes + follower.sizeBytes);
    expect(sha(a)).toBe(sha(b));
  });

  it('edits bytes inside assets, keeping their size', async () => {
    const edit = byType(2, 'archive-edit')[0];
    const find = async (v: number) => {
      const toc = (await readGpakToc(join(out, `v${v}`, edit.path)))!;
      const e = toc.entries.find((x) => x.name === edit.asset)!;
      return file(v, edit.path).subarray(e.offsetBytes, e.offsetBytes + e.sizeBytes);
    };
    const [a, b] = [await find(1), await find(2)];
    expect(b.length).toBe(a.length);
    let diff = 0;
    for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) diff++;
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThanOrEqual(edit.bytes);
  });

  it('appends assets at the end of an archive', async () => {
    const app = byType(2, 'archive-append')[0];
    const toc = (await readGpakToc(join(out, 'v2', app.path)))!;
    expect(toc.entries.slice(-app.assets.length).map((e) => e.name)).toEqual(app.assets);
  });

  it('renames and moves files without changing their bytes, adds and deletes files', () => {
    for (const to of [2, 3]) {
      const moved = [...byType(to, 'rename'), ...byType(to, 'move')];
      expect(byType(to, 'move').length).toBeGreaterThan(0);
      expect(byType(to, 'rename').length).toBeGreaterThan(0);
      for (const m of moved) {
        expect(existsSync(join(out, `v${to}`, m.to))).toBe(true);
        expect(existsSync(join(out, `v${to}`, m.from))).toBe(false);
        const edited = byType(to, 'text-edit').some((e) => e.path === m.from);
        if (!edited) expect(sha(file(to, m.to))).toBe(sha(file(to - 1, m.from)));
      }
      for (const d of byType(to, 'delete')) {
        expect(existsSync(join(out, `v${to - 1}`, d.path))).toBe(true);
        expect(existsSync(join(out, `v${to}`, d.path))).toBe(false);
      }
      const added = byType(to, 'add');
      expect(added.length).toBeGreaterThan(0);
      for (const a of added) {
        expect(existsSync(join(out, `v${to - 1}`, a.path))).toBe(false);
        expect(statSync(join(out, `v${to}`, a.path)).size).toBe(a.sizeBytes);
      }
    }
  });

  it('rebuilds the executable with small changes scattered over the whole file', () => {
    const [rb] = byType(2, 'binary-rebuild');
    expect(rb.path).toBe('Game.x86_64');
    expect(rb.functionsChanged).toBeGreaterThan(0);
    const a = file(1, rb.path);
    const b = file(2, rb.path);
    expect(Math.abs(a.length - b.length)).toBeLessThan(a.length * 0.1);
    // Compare 4 KiB pages: many pages change (shifted call targets), yet most bytes are still shared content.
    const pages = Math.floor(Math.min(a.length, b.length) / 4096);
    let changedPages = 0;
    for (let p = 0; p < pages; p++) {
      if (Buffer.compare(a.subarray(p * 4096, (p + 1) * 4096), b.subarray(p * 4096, (p + 1) * 4096)) !== 0) changedPages++;
    }
    expect(changedPages).toBeGreaterThan(pages * 0.3);
    expect((statSync(join(out, 'v1', rb.path)).mode & 0o111) !== 0).toBe(true);
  });
});
