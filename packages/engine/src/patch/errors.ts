// Typed errors of the patch code, part of the engine's error family (EngineError).
// Callers switch on `code` (stable), never on `message`.

import { EngineError } from '../errors.js';

export type PatchErrorCode = 'patchCorrupt' | 'patchUnsupported' | 'wrongBase' | 'unsafePath' | 'patchInput';

/** Base class: every failure of make/apply that is about the data (not a bug) is one of these. */
export class PatchError extends EngineError {
  declare readonly code: PatchErrorCode;
  constructor(code: PatchErrorCode, message: string) {
    super(code, message);
    this.name = new.target.name;
  }
}

/**
 * The patch itself is damaged: a part's hash does not match the pointer, a part is truncated,
 * a record does not decode, or decoded bytes do not match B's chunk hashes. `part` names the file
 * of the patch folder, `offset` the byte position inside it when known.
 */
export class PatchCorruptError extends PatchError {
  readonly part: string;
  readonly offset: number | undefined;
  constructor(part: string, detail: string, offset?: number) {
    super('patchCorrupt', `patch part ${part} is corrupt${offset === undefined ? '' : ` at byte ${offset}`}: ${detail}`);
    this.part = part;
    this.offset = offset;
  }
}

/** The patch is well-formed but uses a format version or codec this reader does not know. */
export class PatchUnsupportedError extends PatchError {
  readonly part: string;
  constructor(part: string, detail: string) {
    super('patchUnsupported', `patch part ${part} is not supported: ${detail}`);
    this.part = part;
  }
}

/** The installed folder is not the build the patch starts from; `path` is the first file found different. */
export class WrongBaseError extends PatchError {
  readonly path: string;
  constructor(path: string, detail: string) {
    super('wrongBase', `installed file ${path} is not the expected base build: ${detail}`);
    this.path = path;
  }
}

/** A path of the target build would land outside the output folder (absolute, '..', through a link). */
export class UnsafePathError extends PatchError {
  readonly path: string;
  constructor(path: string, detail: string) {
    super('unsafePath', `unsafe path ${JSON.stringify(path)}: ${detail}`);
    this.path = path;
  }
}

/** A make/apply input is unusable (missing folder, unknown input kind, non-empty output folder). */
export class PatchInputError extends PatchError {
  constructor(message: string) {
    super('patchInput', message);
  }
}
