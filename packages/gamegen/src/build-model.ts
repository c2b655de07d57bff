// A game build as a small recipe: which files exist and how their bytes are generated. Versions are
// derived recipe → recipe, so a 4 GB series needs only kilobytes-to-megabytes of memory.

import { alignUp, GPAK_ALIGN_BYTES, GPAK_HEADER_BYTES, gpakTocBytes } from './archive-format.js';
import { textLine } from './content.js';
import type { PayloadKind, TextStyle } from './content.js';
import { mixSeed, Rng } from './prng.js';

/** Bytes [offset, offset + length) of an asset replaced by noise of `seed`. */
export interface AssetEdit {
  offsetBytes: number;
  lengthBytes: number;
  seed: number;
}

export interface Asset {
  name: string;
  kind: PayloadKind;
  seed: number;
  sizeBytes: number;
  edits: AssetEdit[];
}

export interface CodeFunction {
  seed: number;
  sizeBytes: number;
}

export type FileContent =
  | { type: 'archive'; assets: Asset[] }
  | { type: 'binary'; functions: CodeFunction[]; rodata: number[]; rodataBytes: number }
  | { type: 'text'; style: TextStyle; lines: number[]; bytes: number }
  | { type: 'blob'; segments: Array<{ kind: PayloadKind; seed: number; sizeBytes: number }> };

export interface FileModel {
  /** Relative '/'-separated path inside the build folder. */
  path: string;
  /** 0o755 for executables and libraries, 0o644 otherwise. */
  mode: number;
  content: FileContent;
}

export interface BuildModel {
  files: FileModel[];
}

/** One change between consecutive versions, as written to series.json. */
export type SeriesChange =
  | { type: 'archive-edit'; path: string; asset: string; edits: number; bytes: number }
  | { type: 'archive-insert'; path: string; asset: string; index: number; sizeBytes: number }
  | { type: 'archive-append'; path: string; assets: string[]; sizeBytes: number }
  | { type: 'archive-remove'; path: string; asset: string }
  | { type: 'binary-rebuild'; path: string; functionsChanged: number; functionsAdded: number; functionsRemoved: number }
  | { type: 'text-edit'; path: string; linesChanged: number; linesAdded: number }
  | { type: 'rename'; from: string; to: string }
  | { type: 'move'; from: string; to: string }
  | { type: 'add'; path: string; sizeBytes: number }
  | { type: 'delete'; path: string };

export const BINARY_HEADER_BYTES = 64;
export const FUNCTION_ALIGN_BYTES = 16;

/** UTF-8 size of one generated line (lines are ASCII). */
export function lineBytes(style: TextStyle, seed: number): number {
  return textLine(style, seed).length;
}

/** Exact size in bytes of a file generated from `content`. */
export function contentBytes(c: FileContent): number {
  switch (c.type) {
    case 'archive': {
      let p = GPAK_HEADER_BYTES;
      for (const a of c.assets) p = alignUp(p) + a.sizeBytes;
      return alignUp(p) + gpakTocBytes(c.assets.map((a) => a.name));
    }
    case 'binary':
      return alignUp(codeBytes(c.functions) + BINARY_HEADER_BYTES, FUNCTION_ALIGN_BYTES) + c.rodataBytes;
    case 'text':
      return c.bytes;
    case 'blob':
      return c.segments.reduce((s, g) => s + g.sizeBytes, 0);
  }
}

function codeBytes(fns: readonly CodeFunction[]): number {
  return fns.reduce((s, f) => s + alignUp(f.sizeBytes, FUNCTION_ALIGN_BYTES), 0);
}

export function buildBytes(model: BuildModel): number {
  return model.files.reduce((s, f) => s + contentBytes(f.content), 0);
}

const PAYLOAD_KINDS: readonly PayloadKind[] = ['noise', 'noise', 'noise', 'noise', 'noise', 'noise', 'pcm', 'mesh'];

function newAsset(r: Rng, name: string, sizeBytes: number): Asset {
  return { name, kind: r.pick(PAYLOAD_KINDS), seed: r.u32(), sizeBytes, edits: [] };
}

function assetName(r: Rng, archiveStem: string, i: number): string {
  const dir = r.pick(['tex', 'tex', 'snd', 'mesh', 'anim', 'shader', 'fx']);
  return `${archiveStem}/${dir}/${dir}_${i.toString(36)}_${r.u32().toString(36)}`;
}

function newFunctions(r: Rng, bytes: number): CodeFunction[] {
  const fns: CodeFunction[] = [];
  let total = 0;
  while (total < bytes) {
    const f = { seed: r.u32(), sizeBytes: r.logInt(24, 12_288) };
    fns.push(f);
    total += alignUp(f.sizeBytes, FUNCTION_ALIGN_BYTES);
  }
  return fns;
}

function newLines(r: Rng, style: TextStyle, bytes: number): { lines: number[]; bytes: number } {
  const lines: number[] = [];
  let total = 0;
  while (total < bytes) {
    const s = r.u32();
    lines.push(s);
    total += lineBytes(style, s);
  }
  return { lines, bytes: total };
}

const TEXT_DIRS: ReadonlyArray<readonly [string, TextStyle, string]> = [
  ['config', 'ini', 'ini'],
  ['config/profiles', 'ini', 'cfg'],
  ['data/scripts/ai', 'lua', 'lua'],
  ['data/scripts/ui', 'lua', 'lua'],
  ['data/scripts/levels', 'lua', 'lua'],
  ['data/scripts/common', 'lua', 'lua'],
  ['data/loc', 'csv', 'csv'],
  ['data/ui/layouts', 'json', 'json'],
  ['docs', 'txt', 'txt'],
];

function newTextFile(r: Rng, taken: Set<string>, maxBytes: number): FileModel {
  const [dir, style, ext] = r.pick(TEXT_DIRS);
  let path: string;
  do path = `${dir}/${r.pick(['', 'x_', 'new_'])}${textLine('txt', r.u32()).split(' ')[0]}_${r.u32().toString(36)}.${ext}`;
  while (taken.has(path));
  taken.add(path);
  const text = newLines(r, style, r.logInt(256, Math.max(512, maxBytes)));
  return { path, mode: 0o644, content: { type: 'text', style, lines: text.lines, bytes: text.bytes } };
}

/**
 * The first build of a series: ~1.5 % text/config files in nested folders, ~6 % executable and
 * libraries, ~4 % movies, the rest packed asset archives (mostly incompressible payloads, a few
 * duplicated assets). Total within a few percent of `sizeBytes` (exact for sizes ≥ 1 MiB up to
 * archive granularity).
 */
export function createBuild(seed: number, sizeBytes: number): BuildModel {
  const r = new Rng(mixSeed(seed, 1));
  const files: FileModel[] = [];
  const taken = new Set<string>();

  const textBudget = Math.max(8 * 1024, Math.floor(sizeBytes * 0.015));
  const textFiles = Math.min(3000, Math.max(6, Math.round(textBudget / 12_288)));
  const perText = Math.max(512, Math.floor((2 * textBudget) / textFiles));
  for (let i = 0; i < textFiles; i++) files.push(newTextFile(r, taken, perText));

  const binBudget = Math.max(16 * 1024, Math.floor(sizeBytes * 0.06));
  const libs = ['lib/libengine.so', 'lib/libphysics.so', 'lib/libaudio.so', 'lib/libnet.so'];
  const exeShare = 0.5;
  const binary = (codeBytes: number, rodataBytes: number): FileContent => {
    const functions = newFunctions(r, codeBytes);
    const rodata = newLines(r, 'txt', rodataBytes);
    return { type: 'binary', functions, rodata: rodata.lines, rodataBytes: rodata.bytes };
  };
  files.push({ path: 'Game.x86_64', mode: 0o755, content: binary(binBudget * exeShare, binBudget * 0.05) });
  for (const lib of libs) {
    const b = (binBudget * (1 - exeShare)) / libs.length;
    files.push({ path: lib, mode: 0o755, content: binary(b * 0.9, b * 0.1) });
  }

  const movieBudget = Math.floor(sizeBytes * 0.04);
  if (movieBudget >= 4096) {
    files.push({ path: 'data/movies/intro.bk2', mode: 0o644, content: { type: 'blob', segments: [{ kind: 'noise', seed: r.u32(), sizeBytes: movieBudget }] } });
  }

  const used = files.reduce((s, f) => s + contentBytes(f.content), 0);
  const archiveBudget = Math.max(64 * 1024, sizeBytes - used);
  const nArchives = Math.min(24, Math.max(2, Math.round(archiveBudget / (48 * 1024 * 1024))));
  const maxAsset = Math.max(8 * 1024, Math.min(16 * 1024 * 1024, Math.floor(archiveBudget / nArchives / 6)));
  for (let k = 0; k < nArchives; k++) {
    const stem = k === 0 ? 'common' : `level${String(k).padStart(2, '0')}`;
    const target = Math.floor(archiveBudget / nArchives);
    const assets: Asset[] = [];
    let p = GPAK_HEADER_BYTES;
    for (let i = 0; p < target - GPAK_ALIGN_BYTES; i++) {
      const name = assetName(r, stem, i);
      let size = Math.min(r.logInt(4096, maxAsset), target - p);
      size = Math.max(64, size - (size % 64));
      if (assets.length > 4 && r.chance(0.03)) {
        const twin = r.pick(assets);
        assets.push({ ...twin, name, edits: [] });
      } else {
        assets.push(newAsset(r, name, size));
      }
      p = alignUp(p) + assets[assets.length - 1].sizeBytes;
    }
    files.push({ path: `data/paks/${stem}.pak`, mode: 0o644, content: { type: 'archive', assets } });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : 1));
  return { files };
}

function dirOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}
function baseOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/**
 * Derives version `version` from the previous one: edited bytes in archives, assets inserted
 * mid-archive (shifting the rest), appended and removed assets, rebuilt executable and sometimes a
 * library (changed, added and removed functions: call displacements move everywhere after them),
 * edited, added, deleted, renamed and moved files. Returns the new model and the changes made.
 * The input model is not modified.
 */
export function nextVersion(prev: BuildModel, seed: number, version: number): { model: BuildModel; changes: SeriesChange[] } {
  const model: BuildModel = structuredClone(prev);
  const v: VersionStep = {
    r: new Rng(mixSeed(seed, version, 2)),
    version,
    model,
    changes: [],
    taken: new Set(model.files.map((f) => f.path)),
    archives: model.files.filter((f) => f.content.type === 'archive'),
  };
  // The order of the steps is part of the output: each draws from the same random stream.
  editAssets(v);
  insertAssets(v);
  removeAsset(v);
  appendAssets(v);
  rebuildBinaries(v);
  editTexts(v);
  renameAndMoveFiles(v);
  deleteAndAddFiles(v);
  model.files.sort((a, b) => (a.path < b.path ? -1 : 1));
  return { model, changes: v.changes };
}

/** The state nextVersion's steps share: one random stream, the model being changed and the changes so far. */
interface VersionStep {
  r: Rng;
  version: number;
  model: BuildModel;
  changes: SeriesChange[];
  /** Paths in use, so renames and new files never collide. */
  taken: Set<string>;
  /** The archives the version starts with (a DLC archive added by this version is not among them). */
  archives: FileModel[];
}

function assetsOf(f: FileModel): Asset[] {
  return (f.content as Extract<FileContent, { type: 'archive' }>).assets;
}

function textsOf(model: BuildModel): FileModel[] {
  return model.files.filter((f) => f.content.type === 'text');
}

/** Edited bytes inside existing assets. */
function editAssets({ r, archives, changes }: VersionStep): void {
  for (let k = 0, n = r.int(2, 4); k < n; k++) {
    const f = r.pick(archives);
    const assets = assetsOf(f);
    for (let j = 0, m = r.int(1, 4); j < m; j++) {
      const a = r.pick(assets);
      const edits = r.int(1, 3);
      let bytes = 0;
      for (let e = 0; e < edits; e++) {
        const lengthBytes = Math.min(a.sizeBytes, r.logInt(16, 64 * 1024));
        const offsetBytes = r.int(0, a.sizeBytes - lengthBytes);
        a.edits.push({ offsetBytes, lengthBytes, seed: r.u32() });
        bytes += lengthBytes;
      }
      changes.push({ type: 'archive-edit', path: f.path, asset: a.name, edits, bytes });
    }
  }
}

/** Assets inserted mid-archive: everything after them shifts. */
function insertAssets({ r, archives, changes, version }: VersionStep): void {
  for (let k = 0, n = r.int(1, 2); k < n; k++) {
    const f = r.pick(archives);
    const assets = assetsOf(f);
    if (assets.length < 2) continue;
    const index = r.int(1, assets.length - 1);
    const size = Math.max(64, r.logInt(4096, Math.max(8192, Math.floor(assets.reduce((s, a) => s + a.sizeBytes, 0) / 20))));
    const a = newAsset(r, `${baseOf(f.path).replace('.pak', '')}/v${version}/ins_${k}_${r.u32().toString(36)}`, size - (size % 64));
    assets.splice(index, 0, a);
    changes.push({ type: 'archive-insert', path: f.path, asset: a.name, index, sizeBytes: a.sizeBytes });
  }
}

/** An asset removed. */
function removeAsset({ r, archives, changes }: VersionStep): void {
  const f = r.pick(archives);
  const assets = assetsOf(f);
  if (assets.length > 3) {
    const [gone] = assets.splice(r.int(1, assets.length - 2), 1);
    changes.push({ type: 'archive-remove', path: f.path, asset: gone.name });
  }
}

/** Appended assets at the end of one archive. */
function appendAssets({ r, archives, changes, version }: VersionStep): void {
  const f = r.pick(archives);
  const assets = assetsOf(f);
  const added: string[] = [];
  let bytes = 0;
  for (let k = 0, n = r.int(1, 3); k < n; k++) {
    const size = Math.max(64, r.logInt(4096, Math.max(8192, Math.floor(assets.reduce((s, a) => s + a.sizeBytes, 0) / 30))));
    const a = newAsset(r, `${baseOf(f.path).replace('.pak', '')}/v${version}/app_${k}_${r.u32().toString(36)}`, size - (size % 64));
    assets.push(a);
    added.push(a.name);
    bytes += a.sizeBytes;
  }
  changes.push({ type: 'archive-append', path: f.path, assets: added, sizeBytes: bytes });
}

/** Rebuilt executable (always) and one library (every other version). */
function rebuildBinaries({ r, model, changes, version }: VersionStep): void {
  const binaries = model.files.filter((f) => f.content.type === 'binary');
  const rebuild = [binaries.find((f) => f.path === 'Game.x86_64') ?? binaries[0]];
  if (version % 2 === 0) rebuild.push(r.pick(binaries.filter((f) => f !== rebuild[0])));
  for (const f of rebuild) {
    if (!f) continue;
    const c = f.content as Extract<FileContent, { type: 'binary' }>;
    let changed = 0;
    let added = 0;
    let removed = 0;
    const fns: CodeFunction[] = [];
    for (const fn of c.functions) {
      const x = r.float();
      if (x < 0.003) {
        removed++;
        continue;
      }
      if (x < 0.033) {
        changed++;
        fns.push({ seed: r.u32(), sizeBytes: Math.max(24, Math.round(fn.sizeBytes * (0.8 + r.float() * 0.4))) });
      } else fns.push(fn);
      if (r.chance(0.005)) {
        added++;
        fns.push({ seed: r.u32(), sizeBytes: r.logInt(24, 12_288) });
      }
    }
    c.functions = fns;
    for (let i = 0; i < c.rodata.length; i++) {
      if (r.chance(0.02)) {
        const s = r.u32();
        c.rodataBytes += lineBytes('txt', s) - lineBytes('txt', c.rodata[i]);
        c.rodata[i] = s;
      }
    }
    changes.push({ type: 'binary-rebuild', path: f.path, functionsChanged: changed, functionsAdded: added, functionsRemoved: removed });
  }
}

/** Text edits. */
function editTexts({ r, model, changes }: VersionStep): void {
  const texts = () => textsOf(model);
  for (let k = 0, n = r.int(2, 6); k < n; k++) {
    const f = r.pick(texts());
    const c = f.content as Extract<FileContent, { type: 'text' }>;
    let linesChanged = 0;
    let linesAdded = 0;
    for (let j = 0, m = r.int(1, 3); j < m; j++) {
      const i = r.int(0, c.lines.length - 1);
      const s = r.u32();
      if (r.chance(0.5)) {
        c.bytes += lineBytes(c.style, s) - lineBytes(c.style, c.lines[i]);
        c.lines[i] = s;
        linesChanged++;
      } else {
        c.lines.splice(i, 0, s);
        c.bytes += lineBytes(c.style, s);
        linesAdded++;
      }
    }
    changes.push({ type: 'text-edit', path: f.path, linesChanged, linesAdded });
  }
}

/** Renamed (same folder) and moved (other folder) files. */
function renameAndMoveFiles({ r, model, changes, taken, archives, version }: VersionStep): void {
  const texts = () => textsOf(model);
  {
    const f = r.pick(texts());
    const from = f.path;
    const to = `${dirOf(from)}/${baseOf(from).replace(/^(x_|new_)?/, 'r' + version + '_')}`;
    if (!taken.has(to)) {
      taken.delete(from);
      taken.add(to);
      f.path = to;
      changes.push({ type: 'rename', from, to });
    }
  }
  {
    const f = r.pick(texts());
    const from = f.path;
    const dirs = TEXT_DIRS.map((d) => d[0]).filter((d) => d !== dirOf(from));
    const to = `${r.pick(dirs)}/${baseOf(from)}`;
    if (!taken.has(to)) {
      taken.delete(from);
      taken.add(to);
      f.path = to;
      changes.push({ type: 'move', from, to });
    }
  }
  if (version % 3 === 0 && archives.length > 2) {
    // Occasionally a whole archive is renamed: its bytes are unchanged, only the path differs.
    const f = archives[archives.length - 1];
    const from = f.path;
    const to = from.replace(/\.pak$/, `_r${version}.pak`);
    taken.delete(from);
    taken.add(to);
    f.path = to;
    changes.push({ type: 'rename', from, to });
  }
}

/** Deleted and new files (and, every other version, a new DLC archive). */
function deleteAndAddFiles({ r, model, changes, taken, archives, version }: VersionStep): void {
  const texts = () => textsOf(model);
  for (let k = 0, n = r.int(1, 2); k < n; k++) {
    const t = texts();
    if (t.length <= 4) break;
    const f = r.pick(t);
    model.files.splice(model.files.indexOf(f), 1);
    taken.delete(f.path);
    changes.push({ type: 'delete', path: f.path });
  }
  for (let k = 0, n = r.int(1, 4); k < n; k++) {
    const f = newTextFile(r, taken, 16 * 1024);
    model.files.push(f);
    changes.push({ type: 'add', path: f.path, sizeBytes: contentBytes(f.content) });
  }
  if (version % 2 === 1) {
    const avg = Math.max(4096, Math.floor(archives.reduce((s, f) => s + contentBytes(f.content), 0) / archives.length / 8));
    const stem = `dlc${String(version).padStart(2, '0')}`;
    const assets: Asset[] = [];
    for (let i = 0, n = r.int(2, 6); i < n; i++) {
      const size = Math.max(64, r.logInt(4096, Math.max(8192, Math.floor(avg / 3))));
      assets.push(newAsset(r, assetName(r, stem, i), size - (size % 64)));
    }
    const f: FileModel = { path: `data/paks/${stem}.pak`, mode: 0o644, content: { type: 'archive', assets } };
    model.files.push(f);
    changes.push({ type: 'add', path: f.path, sizeBytes: contentBytes(f.content) });
  }
}
