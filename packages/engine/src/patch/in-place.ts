// applyPatchInPlace: crash-safe update of an installed folder from A to B.
//
// Protocol (all names beside the folder D):
//   1. build B into D.rockit-new (unchanged files hard-linked from D), verifying everything, fsynced;
//      then carry the player's entries of D that A's manifest does not list (saves, settings, mods) into
//      it at the same paths (files hard-linked, so D keeps them too), fsynced;
//   2. write the journal D.rockit-journal {state: 'swap'} (temp file, fsync, rename, fsync dir);
//   3. rename D -> D.rockit-old;   4. rename D.rockit-new -> D;
//   5. remove D.rockit-old;        6. remove the journal.
// Without a journal, D is A and any D.rockit-new is an unfinished build (deleted on recovery).
// With a journal, B is complete and verified: recovery rolls forward from whichever step was hit.
// So after a kill at any moment followed by recovery, D is exactly A or exactly B (each with the player's
// entries A does not list).

import { constants as fsConstants, type Stats } from 'node:fs';
import { chmod, copyFile, link, lstat, mkdir, open, readdir, readFile, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Manifest } from '../format/types.js';
import { applyPatch } from './apply.js';
import { foldersOf } from './apply-target.js';
import { openPatch } from './patch-source.js';
import { PatchInputError } from './errors.js';
import type { PatchProgress } from './make.js';

/** Points at which the test hook can stop the process (in protocol order). */
export type InPlaceStep = 'building' | 'built' | 'carried' | 'journaled' | 'movedOld' | 'movedNew' | 'removedOld';

export interface ApplyInPlaceOptions {
  patch: string;
  /** The installed folder holding A; holds B on success. */
  dir: string;
  fromManifest?: Manifest;
  onProgress?: (p: PatchProgress) => void;
  /** Test hook: when the protocol reaches this step, `crash` is called (it must not return normally). */
  failAt?: InPlaceStep;
  /** Default: SIGKILL of the current process, to simulate a power cut of the apply. */
  crash?: () => void;
}

export type RecoveryOutcome = 'clean' | 'discardedStaging' | 'rolledForward';

/**
 * The player's entries an in-place apply kept: everything in the folder that A's manifest does not list
 * (neither as an entry nor as a parent folder of one), carried into B at the same relative path.
 */
export interface KeptUserEntries {
  /** Files, symlinks and other non-folder entries kept (folders the player made are kept too, not counted). */
  count: number;
  /**
   * Player's entries at a path where B has an entry: B's stays, the player's is kept beside it under
   * `keptAs` (`<name>.rockit-user`, or `<name>.rockit-user-2`, ... when that is taken). Paths are
   * relative to the folder, in walk order.
   */
  conflicts: Array<{ path: string; keptAs: string }>;
}

export interface ApplyInPlaceResult {
  /** 'alreadyApplied': an interrupted run of this same patch was completed by recovery. */
  outcome: 'applied' | 'alreadyApplied';
  recovery: RecoveryOutcome;
  /** Canonical manifest id of the build now in the folder. */
  manifestId: string;
  copiedBytes: number;
  patchedBytes: number;
  /** The player's entries carried into B by this run (none when outcome is 'alreadyApplied': the interrupted run carried them). */
  kept: KeptUserEntries;
}

const JOURNAL_FORMAT = 'rockit-inplace';
const JOURNAL_VERSION = 1;

function pathsOf(dir: string) {
  const abs = resolve(dir);
  return { dir: abs, staging: `${abs}.rockit-new`, old: `${abs}.rockit-old`, journal: `${abs}.rockit-journal`, parent: dirname(abs), name: basename(abs) };
}

const exists = (p: string) => stat(p).then(
  () => true,
  () => false,
);

/** fsync of a folder's entries (or of a file's data and inode). */
async function fsyncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Completes or undoes a half-done in-place apply of `dir`. Safe to call at any time and more than
 * once; returns what it did. Throws PatchInputError when the journal is unreadable or the folders
 * are in a state no crash of this protocol can produce.
 */
export async function recoverInPlace(dir: string): Promise<RecoveryOutcome> {
  return (await recover(dir)).outcome;
}

async function recover(dir: string): Promise<{ outcome: RecoveryOutcome; to?: string }> {
  const p = pathsOf(dir);
  if (!(await exists(p.journal))) {
    if (await exists(p.staging)) {
      await rm(p.staging, { recursive: true, force: true });
      return { outcome: 'discardedStaging' };
    }
    return { outcome: 'clean' };
  }
  let journal: any;
  try {
    journal = JSON.parse(await readFile(p.journal, 'utf8'));
  } catch {
    throw new PatchInputError(`unreadable journal ${p.journal}`);
  }
  if (journal?.format !== JOURNAL_FORMAT || journal.version !== JOURNAL_VERSION || journal.state !== 'swap') {
    throw new PatchInputError(`unknown journal ${p.journal}`);
  }
  const [hasDir, hasNew, hasOld] = await Promise.all([exists(p.dir), exists(p.staging), exists(p.old)]);
  if (hasNew) {
    if (hasDir && hasOld) throw new PatchInputError(`${p.dir}, its staging and its old copy all exist; resolve by hand`);
    if (hasDir) await rename(p.dir, p.old);
    await rename(p.staging, p.dir);
    await fsyncDir(p.parent);
  } else if (!hasDir) {
    throw new PatchInputError(`${p.dir} and its staging are both missing`);
  }
  await rm(p.old, { recursive: true, force: true });
  await rm(p.journal, { force: true });
  await fsyncDir(p.parent);
  return { outcome: 'rolledForward', to: typeof journal.to === 'string' ? journal.to : undefined };
}

/**
 * Updates `dir` from A to B in place, crash-safely (see the protocol above). Recovers an earlier
 * interrupted run first. Errors are those of applyPatch (nothing of `dir` is changed when one is
 * thrown before the swap) and PatchInputError from recovery.
 */
export async function applyPatchInPlace(opts: ApplyInPlaceOptions): Promise<ApplyInPlaceResult> {
  const p = pathsOf(opts.dir);
  const crash = opts.crash ?? (() => process.kill(process.pid, 'SIGKILL'));
  const hook = (step: InPlaceStep) => {
    if (opts.failAt === step) crash();
  };
  const patch = await openPatch(opts.patch);
  const target = patch.pointer.to.manifestId;
  await patch.close();
  const recovered = await recover(p.dir);
  if (recovered.outcome === 'rolledForward' && recovered.to === target) {
    return { outcome: 'alreadyApplied', recovery: recovered.outcome, manifestId: target, copiedBytes: 0, patchedBytes: 0, kept: { count: 0, conflicts: [] } };
  }
  if (!(await exists(p.dir))) throw new PatchInputError(`not found: ${p.dir}`);
  let started = false;
  const result = await applyPatch(
    {
      patch: opts.patch,
      fromDir: p.dir,
      outDir: p.staging,
      fromManifest: opts.fromManifest,
      onProgress: (pr) => {
        if (!started && pr.doneBytes > 0) {
          started = true;
          hook('building');
        }
        opts.onProgress?.(pr);
      },
    },
    { linkUnchanged: true, durable: true },
  ).catch(async (err: unknown) => {
    await rm(p.staging, { recursive: true, force: true });
    throw err;
  });
  hook('built');
  const kept = await commitStaged(p, result.baseManifest, target, hook);
  opts.onProgress?.({ phase: 'swap', doneBytes: 1, totalBytes: 1 });
  return { outcome: 'applied', recovery: recovered.outcome, manifestId: target, copiedBytes: result.copiedBytes, patchedBytes: result.patchedBytes, kept };
}

/**
 * Steps 1 (carry) to 6 of the protocol for a B already complete and verified in `p.staging`. Removes the
 * staging folder when carrying fails (D is unchanged then).
 */
async function commitStaged(p: ReturnType<typeof pathsOf>, base: Manifest, to: string, hook: (s: InPlaceStep) => void): Promise<KeptUserEntries> {
  const kept = await keepUserEntries(p.dir, p.staging, base).catch(async (err: unknown) => {
    await rm(p.staging, { recursive: true, force: true });
    throw err;
  });
  hook('carried');
  const tmp = `${p.journal}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify({ format: JOURNAL_FORMAT, version: JOURNAL_VERSION, state: 'swap', to }));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, p.journal);
  await fsyncDir(p.parent);
  hook('journaled');
  await rename(p.dir, p.old);
  hook('movedOld');
  await rename(p.staging, p.dir);
  await fsyncDir(p.parent);
  hook('movedNew');
  await rm(p.old, { recursive: true, force: true });
  hook('removedOld');
  await rm(p.journal, { force: true });
  await fsyncDir(p.parent);
  return kept;
}

export interface ReplaceInPlaceOptions {
  /** The installed folder holding A; holds B on success. */
  dir: string;
  /** A's manifest: entries of `dir` it does not list are the player's and are carried into B. */
  baseManifest: Manifest;
  /** Canonical manifest id of B (recorded in the journal). */
  toManifestId: string;
  /**
   * Writes B, complete and verified, into `staging` (an empty folder beside `dir`) and makes it durable.
   * `dir` holds A meanwhile and may be read (e.g. to copy the chunks B shares with A).
   */
  build: (staging: string) => Promise<void>;
}

/**
 * Replaces A by B in `dir` with the same crash-safe protocol as applyPatchInPlace, for a B the caller builds
 * (e.g. from an image's chunks instead of a patch). Recovers an earlier interrupted run first. Killed at any
 * moment, `dir` is A or B after recovery, with the player's entries. Errors: those of `build` (the staging
 * folder is removed, `dir` is unchanged) and PatchInputError from recovery.
 */
export async function replaceInPlace(opts: ReplaceInPlaceOptions): Promise<{ recovery: RecoveryOutcome; kept: KeptUserEntries }> {
  const p = pathsOf(opts.dir);
  const recovered = await recover(p.dir);
  if (!(await exists(p.dir))) throw new PatchInputError(`not found: ${p.dir}`);
  await rm(p.staging, { recursive: true, force: true });
  await mkdir(p.staging, { recursive: true });
  try {
    await opts.build(p.staging);
  } catch (err) {
    await rm(p.staging, { recursive: true, force: true });
    throw err;
  }
  const kept = await commitStaged(p, opts.baseManifest, opts.toManifestId, () => undefined);
  return { recovery: recovered.outcome, kept };
}


/** Suffix of the name under which a player's entry is kept when B has an entry at its path. */
const USER_SUFFIX = '.rockit-user';

/**
 * Carries every entry of `dir` that `base` (A's manifest) does not list into `staging` (which holds B),
 * at the same relative path, and makes the carried entries durable. `dir` is only read: files are
 * hard-linked (copied when linking fails), symlinks recreated (never followed), folders created.
 * Folders A lists are searched for the player's entries (recreated in staging when B removed them);
 * entries A lists are left to the update. Where B has an entry, B's stays and the player's is kept
 * beside it (see KeptUserEntries). Errors: file system errors, and PatchInputError for a special
 * file (fifo, socket, device) that cannot be hard-linked. On error `staging` may hold part of the
 * carried entries; `dir` is unchanged.
 */
async function keepUserEntries(dir: string, staging: string, base: Manifest): Promise<KeptUserEntries> {
  const listed = new Set([...base.files.map((f) => f.path), ...foldersOf(base)]);
  const carrier = new UserEntryCarrier(dir, staging, listed);
  await carrier.carryChildren('', { rel: '', ensure: present });
  await carrier.makeDurable();
  return carrier.kept;
}

/** A folder of the staging tree receiving carried entries; `ensure` creates it (and its parents) on first use. */
interface Dest {
  rel: string;
  ensure: () => Promise<void>;
}

/** `ensure` of a folder that already exists. */
const present = async (): Promise<void> => undefined;

const relJoin = (parent: string, name: string) => (parent === '' ? name : `${parent}/${name}`);

const depth = (rel: string) => (rel === '' ? 0 : rel.split('/').length);

type StagingState = 'missing' | 'dir' | 'taken';

/** Walks the installed folder and recreates the player's entries in staging (see keepUserEntries). */
class UserEntryCarrier {
  readonly kept: KeptUserEntries = { count: 0, conflicts: [] };
  /** Staging paths this carrier created or reserved (a folder of A made on demand): never merged into, never reused. */
  private readonly claimed = new Set<string>();
  /** Folders this carrier created, parents before children, with the mode they get at the end. */
  private readonly made: Array<{ rel: string; mode: number }> = [];
  /** Staging folders that received entries (their entry lists are fsynced). */
  private readonly touched = new Set<string>();

  constructor(
    private readonly from: string,
    private readonly to: string,
    private readonly listed: ReadonlySet<string>,
  ) {}

  /**
   * Carries the player's entries under `srcRel` of the installed folder into `dest`. Entries whose
   * path is free in staging go first, so that a player's own `x.rockit-user` keeps its name; then
   * the conflicting ones are kept under the first free `.rockit-user` name.
   */
  async carryChildren(srcRel: string, dest: Dest): Promise<void> {
    const conflicting: Array<{ name: string; st: Stats }> = [];
    for (const name of (await readdir(join(this.from, srcRel))).sort()) {
      const src = relJoin(srcRel, name);
      const st = await lstat(join(this.from, src));
      const ofA = this.listed.has(src);
      if (ofA && !st.isDirectory()) continue;
      const dst = relJoin(dest.rel, name);
      const state = await this.stateAt(dst);
      if (state === 'missing') {
        await this.place(src, st, dest, dst, ofA);
      } else if (state === 'dir' && st.isDirectory()) {
        // B has this folder too: the player's entries join B's.
        await this.carryChildren(src, { rel: dst, ensure: present });
      } else {
        conflicting.push({ name, st });
      }
    }
    for (const { name, st } of conflicting) {
      const src = relJoin(srcRel, name);
      await this.place(src, st, dest, await this.freeName(dest.rel, name), this.listed.has(src), src);
    }
  }

  /**
   * Recreates the entry `src` at the free staging path `dst` inside `dest`. A folder of A is only
   * reserved (made when a player's entry inside needs it); `conflictOf` is recorded when something is made.
   */
  private async place(src: string, st: Stats, dest: Dest, dst: string, ofA: boolean, conflictOf?: string): Promise<void> {
    this.claimed.add(dst);
    if (st.isDirectory()) {
      const folder = this.folderOnDemand(dest, dst, st.mode & 0o7777, conflictOf);
      if (!ofA) await folder.ensure();
      await this.carryChildren(src, folder);
      return;
    }
    await dest.ensure();
    const from = join(this.from, src);
    const to = join(this.to, dst);
    if (st.isSymbolicLink()) await symlink(await readlink(from), to);
    else await linkOrCopy(src, st, from, to);
    this.touched.add(dest.rel);
    this.kept.count++;
    if (conflictOf !== undefined) this.kept.conflicts.push({ path: conflictOf, keptAs: dst });
  }

  private folderOnDemand(parent: Dest, rel: string, mode: number, conflictOf: string | undefined): Dest {
    let made: Promise<void> | undefined;
    const make = async () => {
      await parent.ensure();
      await mkdir(join(this.to, rel));
      this.made.push({ rel, mode });
      this.touched.add(parent.rel);
      if (conflictOf !== undefined) this.kept.conflicts.push({ path: conflictOf, keptAs: rel });
    };
    return { rel, ensure: () => (made ??= make()) };
  }

  private async stateAt(rel: string): Promise<StagingState> {
    if (this.claimed.has(rel)) return 'taken';
    const st = await lstat(join(this.to, rel)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (!st) return 'missing';
    return st.isDirectory() ? 'dir' : 'taken';
  }

  /** `<name>.rockit-user`, else `<name>.rockit-user-2`, `-3`, ...: the first name free in staging. */
  private async freeName(parent: string, name: string): Promise<string> {
    for (let i = 1; ; i++) {
      const rel = relJoin(parent, `${name}${USER_SUFFIX}${i === 1 ? '' : `-${i}`}`);
      if ((await this.stateAt(rel)) === 'missing') return rel;
    }
  }

  /**
   * fsyncs every staging folder that received entries (deepest first), then gives the folders made
   * here their modes (deepest first, so a folder without search permission never blocks its
   * children) and fsyncs each one its owner can open. A folder mode is inode metadata: on a
   * journaling file system it is committed at the latest with the journal's fsync that follows.
   */
  async makeDurable(): Promise<void> {
    for (const rel of [...this.touched].sort((x, y) => depth(y) - depth(x))) await fsyncDir(join(this.to, rel));
    for (const { rel, mode } of [...this.made].reverse()) {
      await chmod(join(this.to, rel), mode);
      if ((mode & 0o500) === 0o500) await fsyncDir(join(this.to, rel));
    }
  }
}

/**
 * Hard-links the player's non-folder entry `from` to `to`; a regular file is copied (mode kept,
 * fsynced) when the file system refuses the link. Throws PatchInputError for a special file that cannot be linked.
 */
async function linkOrCopy(rel: string, st: Stats, from: string, to: string): Promise<void> {
  try {
    await link(from, to);
    return;
  } catch (err) {
    if (!st.isFile()) throw new PatchInputError(`cannot keep ${rel}: hard link refused (${(err as NodeJS.ErrnoException).code ?? 'error'}) and it is no regular file to copy`);
  }
  await copyFile(from, to, fsConstants.COPYFILE_EXCL);
  await chmod(to, st.mode & 0o7777);
  await fsyncDir(to);
}
