// applyPatch: A's installed folder + a patch -> B in a new folder (docs/FORMATS.md, "## Patch").
// The work is split by role: apply-manifests (A's and B's manifests), apply-target (B's tree: safety, folders,
// modes), apply-data (the data part's records), apply-base (verified reads of A), applier (writing B).

import { open } from 'node:fs/promises';
import type { Manifest } from '../format/types.js';
import { Applier } from './applier.js';
import { DataReader } from './apply-data.js';
import { loadManifests } from './apply-manifests.js';
import { prepareEmptyDir, validateBase, validateTarget } from './apply-target.js';
import type { PatchPointer } from './format.js';
import type { PatchProgress } from './make.js';
import { HashPool } from './hash-pool.js';
import { CodecPool } from '../codec/codec-pool.js';
import { openPatch } from './patch-source.js';

export { readPatchBase } from './apply-manifests.js';

export interface ApplyPatchOptions {
  /** Patch folder or http(s) URL of one. */
  patch: string;
  /** A's installed folder (read only). */
  fromDir: string;
  /** Where B is written; must not exist or be empty. */
  outDir: string;
  /** A's manifest when the caller keeps it; otherwise the patch's base-manifest part is used. */
  fromManifest?: Manifest;
  onProgress?: (p: PatchProgress) => void;
}

export interface ApplyPatchResult {
  pointer: PatchPointer;
  /** B's manifest. */
  manifest: Manifest;
  /** A's manifest (the one given, or the patch's base-manifest part): what the installed folder was expected to hold. */
  baseManifest: Manifest;
  /** Bytes of B taken from A's files. */
  copiedBytes: number;
  /** Bytes of B decoded from the patch. */
  patchedBytes: number;
}

/** Internal knobs used by applyPatchInPlace. */
export interface ApplyInternals {
  /** Hard-link (instead of copy) B files identical to an A file with the same mode. */
  linkUnchanged?: boolean;
  /** fsync every written file before returning (the in-place swap must only ever expose durable bytes). */
  durable?: boolean;
  /** Codec worker threads for the assembly (0: on the calling thread; default: available parallelism). Tests. */
  codecThreads?: number;
  /** Files larger than this are written in pieces of about this many bytes (default 16 MiB / 8 MiB). Tests. */
  wholeFileJobBytes?: number;
  jobBytes?: number;
}

/** Threads copying and hashing B's files taken whole from A (and checking files written in pieces). */
const HASH_THREADS = 2;

/**
 * Builds B into `outDir` from A's files and the patch. Every chunk of A that is read is checked
 * against A's manifest and every chunk and whole file of B against B's manifest.
 * Errors: PatchCorruptError (damaged patch, names the part), PatchUnsupportedError,
 * WrongBaseError (A's folder differs, names the file), UnsafePathError, PatchInputError.
 * On error `outDir` may hold a partial B (never anything outside it).
 */
export async function applyPatch(opts: ApplyPatchOptions, internals: ApplyInternals = {}): Promise<ApplyPatchResult> {
  // Threads boot while the manifests load.
  const pool = new HashPool(HASH_THREADS);
  const codec = new CodecPool({ tasksPerThread: 2, threads: internals.codecThreads });
  const patch = await openPatch(opts.patch).catch(async (err: unknown) => {
    await Promise.all([pool.close(), codec.close()]);
    throw err;
  });
  try {
    const { a, b } = await loadManifests(patch.pointer, opts.fromManifest, (role) => patch.partPath(role));
    validateTarget(b);
    validateBase(a);
    const dataPath = await patch.partPath('data');
    await prepareEmptyDir(opts.outDir);
    const applier = new Applier(a, b, opts, internals, pool, codec);
    const dataFh = await open(dataPath, 'r');
    try {
      await applier.run(new DataReader(dataFh, (await dataFh.stat()).size, patch.pointer.to.manifestId));
    } finally {
      await dataFh.close();
      await applier.closeAll();
    }
    return { pointer: patch.pointer, manifest: b, baseManifest: a, copiedBytes: applier.copiedBytes, patchedBytes: applier.patchedBytes };
  } finally {
    await patch.close();
    await Promise.all([pool.close(), codec.close()]);
  }
}

/**
 * B's manifest from a patch folder, given A's (the installed build's) manifest: reads only the pointer and the
 * manifest part, never the base-manifest part. Errors: PatchInputError when `fromManifest` is not the patch's
 * base, PatchCorruptError / PatchUnsupportedError for damaged or unknown parts.
 */
export async function readPatchTarget(patchDir: string, fromManifest: Manifest): Promise<Manifest> {
  const patch = await openPatch(patchDir);
  try {
    return (await loadManifests(patch.pointer, fromManifest, (role) => patch.partPath(role))).b;
  } finally {
    await patch.close();
  }
}
