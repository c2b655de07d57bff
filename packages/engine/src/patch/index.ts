// Public API of patches: make, apply, in-place apply with crash recovery.
export { PATCH_POINTER_NAME, PATCH_POINTER_VERSION } from './constants.js';
export { makePatch, makePatchFromSides } from './make.js';
export type { MakePatchOptions, MakePatchResult, PatchProgress } from './make.js';
export { applyPatch, readPatchBase, readPatchTarget } from './apply.js';
export type { ApplyPatchOptions, ApplyPatchResult } from './apply.js';
export { applyPatchInPlace, recoverInPlace, replaceInPlace } from './in-place.js';
export type { ApplyInPlaceOptions, ApplyInPlaceResult, InPlaceStep, RecoveryOutcome, ReplaceInPlaceOptions } from './in-place.js';
export { openBuildSide } from './open-side.js';
export type { BuildSide } from './side.js';
export type { PatchPointer, PatchPart, PatchStats } from './format.js';
export { PatchError, PatchCorruptError, PatchUnsupportedError, WrongBaseError, UnsafePathError, PatchInputError } from './errors.js';
export type { PatchErrorCode } from './errors.js';
export { canonicalManifestId, encodeManifestCanonical, decodeManifestCanonical } from './manifest-codec.js';
