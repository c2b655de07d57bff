// applyPatchInPlace: crash-safe update of an installed folder from A to B.
//
// Protocol (all names beside the folder D):
//   1. build B into D.rockit-new (unchanged files hard-linked from D), verifying everything, fsynced;
//   2. write the journal D.rockit-journal {state: 'swap'} (temp file, fsync, rename, fsync dir);
//   3. rename D -> D.rockit-old;   4. rename D.rockit-new -> D;
//   5. remove D.rockit-old;        6. remove the journal.
// Without a journal, D is A and any D.rockit-new is an unfinished build (deleted on recovery).
// With a journal, B is complete and verified: recovery rolls forward from whichever step was hit.
// So after a kill at any moment followed by recovery, D is exactly A or exactly B.

import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Manifest } from '../format/types.js';
import { applyPatch } from './apply.js';
import { openPatch } from './patch-source.js';
import { PatchInputError } from './errors.js';
import type { PatchProgress } from './make.js';

/** Points at which the test hook can stop the process (in protocol order). */
export type InPlaceStep = 'building' | 'built' | 'journaled' | 'movedOld' | 'movedNew' | 'removedOld';

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

export interface ApplyInPlaceResult {
  /** 'alreadyApplied': an interrupted run of this same patch was completed by recovery. */
  outcome: 'applied' | 'alreadyApplied';
  recovery: RecoveryOutcome;
  /** Canonical manifest id of the build now in the folder. */
  manifestId: string;
  copiedBytes: number;
  patchedBytes: number;
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
    return { outcome: 'alreadyApplied', recovery: recovered.outcome, manifestId: target, copiedBytes: 0, patchedBytes: 0 };
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
  const tmp = `${p.journal}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify({ format: JOURNAL_FORMAT, version: JOURNAL_VERSION, state: 'swap', to: result.pointer.to.manifestId }));
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
  opts.onProgress?.({ phase: 'swap', doneBytes: 1, totalBytes: 1 });
  return { outcome: 'applied', recovery: recovered.outcome, manifestId: target, copiedBytes: result.copiedBytes, patchedBytes: result.patchedBytes };
}

