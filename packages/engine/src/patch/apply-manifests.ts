// A's and B's manifests for applyPatch: decoded from the patch's manifest parts (B's as a zstd delta against
// A's canonical encoding) and checked against the ids the pointer names.

import { readFile } from 'node:fs/promises';
import type { Manifest } from '../format/types.js';
import { BASE_PART_NAME, ManifestPartKind, MANIFEST_PART_NAME } from './constants.js';
import { PatchCorruptError, PatchInputError, PatchUnsupportedError } from './errors.js';
import { decodeManifestPartHeader, MANIFEST_HEADER_BYTES, type PatchPointer } from './format.js';
import { canonicalManifestId, decodeManifestCanonical, encodeManifestCanonical } from './manifest-codec.js';
import { zstdDecompressExact } from './zstd.js';

/**
 * Decodes a patch's base manifest part (role `baseManifest`, the file at `partFile`) and checks it is the build
 * `baseId` (the pointer's from.manifestId). Lets a launcher see whether a patch made from another variant of its
 * build (same files, another stream order) fits its files. Errors: PatchCorruptError.
 */
export async function readPatchBase(partFile: string, baseId: string): Promise<Manifest> {
  const enc = await readManifestPart(partFile, BASE_PART_NAME, baseId);
  return decodeManifestCanonical(enc, (d, o) => new PatchCorruptError(BASE_PART_NAME, d, o));
}

/** Decodes A's and B's manifests and checks them against the pointer's ids. */
export async function loadManifests(
  pointer: PatchPointer,
  fromManifest: Manifest | undefined,
  partPath: (role: 'manifest' | 'baseManifest') => Promise<string>,
): Promise<{ a: Manifest; b: Manifest }> {
  let encA: Buffer;
  let a: Manifest;
  if (fromManifest) {
    encA = encodeManifestCanonical(fromManifest);
    if (canonicalManifestId(encA) !== pointer.from.manifestId) throw new PatchInputError('the given manifest is not the base build of this patch');
    a = fromManifest;
  } else {
    encA = await readManifestPart(await partPath('baseManifest'), BASE_PART_NAME, pointer.from.manifestId);
    a = decodeManifestCanonical(encA, (d, o) => new PatchCorruptError(BASE_PART_NAME, d, o));
  }
  const encB = await readManifestPart(await partPath('manifest'), MANIFEST_PART_NAME, pointer.to.manifestId, encA, pointer.from.manifestId);
  const b = decodeManifestCanonical(encB, (d, o) => new PatchCorruptError(MANIFEST_PART_NAME, d, o));
  return { a, b };
}

async function readManifestPart(path: string, part: string, expectId: string, base?: Buffer, baseId?: string): Promise<Buffer> {
  const buf = await readFile(path);
  const h = decodeManifestPartHeader(part, buf.subarray(0, MANIFEST_HEADER_BYTES));
  if (h.targetId !== expectId) throw new PatchCorruptError(part, 'manifest id does not match the pointer');
  let dict: Buffer | undefined;
  if (h.kind === ManifestPartKind.DeltaFromBase) {
    if (!base || h.baseId !== baseId) throw new PatchCorruptError(part, 'delta against another base manifest');
    dict = base;
  } else if (h.kind !== ManifestPartKind.Full) {
    throw new PatchUnsupportedError(part, `manifest kind ${h.kind}`);
  }
  let enc: Buffer;
  try {
    enc = zstdDecompressExact(buf.subarray(MANIFEST_HEADER_BYTES), h.rawSize, dict);
  } catch (err) {
    throw new PatchCorruptError(part, `zstd: ${(err as Error).message}`, MANIFEST_HEADER_BYTES);
  }
  if (canonicalManifestId(enc) !== expectId) throw new PatchCorruptError(part, 'decoded manifest hash does not match');
  return enc;
}
