// The engine's error family. Callers (server handlers, CLI) match on the class and its `code`/`kind`,
// never on the message. Messages are one line, name the offending item and never embed input bytes.

/** Base of every error the engine throws on purpose. `code` is stable. */
export class EngineError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'EngineError';
    this.code = code;
  }
}

/** A file does not follow its format (bad magic, unsupported version, malformed or out-of-range field). */
export class FormatError extends EngineError {
  constructor(message: string, code = 'format-invalid') {
    super(code, message);
    this.name = 'FormatError';
  }
}

/** What was found damaged. */
export type CorruptionKind =
  | 'image-json'
  | 'manifest'
  | 'chunk'
  | 'pack-missing'
  | 'pack-truncated'
  | 'file';

/**
 * Stored data does not match its hash or size. `name` identifies the damaged item: the chunk hash (hex) for
 * 'chunk', the pack file name for 'pack-*', the manifest file name for 'manifest', the file path for 'file'.
 * A FormatError subclass, so a caller that only cares whether a file is usable catches one class.
 */
export class CorruptionError extends FormatError {
  readonly kind: CorruptionKind;
  readonly itemName: string;
  /** For chunks: the pack that holds it. */
  readonly pack?: string;
  constructor(kind: CorruptionKind, itemName: string, message: string, pack?: string) {
    super(message, `corrupt-${kind}`);
    this.name = 'CorruptionError';
    this.kind = kind;
    this.itemName = itemName;
    this.pack = pack;
  }
}

/** Stable reasons a tar (or folder) input is refused. */
export type TarErrorCode =
  | 'absolute-path'
  | 'path-escapes-root'
  | 'invalid-path'
  | 'path-through-symlink'
  | 'symlink-escapes-root'
  | 'hardlink-target-missing'
  | 'duplicate-entry'
  | 'unsupported-entry-type'
  | 'truncated'
  | 'read-failed';

/**
 * The input archive or folder cannot be turned into an image safely (`fileReadFailed`-style detail for the API).
 * `filename` is the entry as named in the input; `typeExpected`/`typeDetected` are set for type mismatches.
 */
export class TarError extends EngineError {
  override readonly code: TarErrorCode;
  readonly filename: string;
  readonly typeExpected?: string;
  readonly typeDetected?: string;
  constructor(code: TarErrorCode, filename: string, message: string, types?: { expected?: string; detected?: string }) {
    super(code, message);
    this.name = 'TarError';
    this.code = code;
    this.filename = filename;
    this.typeExpected = types?.expected;
    this.typeDetected = types?.detected;
  }
}

export type LimitName = 'maxFiles' | 'maxPathLength' | 'maxTotalBytes';

/** A configured limit (tar-bomb protection) was exceeded. */
export class LimitError extends EngineError {
  readonly limit: LimitName;
  readonly value: number;
  readonly max: number;
  /** The input entry at which the limit was passed, when there is one. */
  readonly entry?: string;
  constructor(limit: LimitName, value: number, max: number, message: string, entry?: string) {
    super('limit-exceeded', message);
    this.name = 'LimitError';
    this.limit = limit;
    this.value = value;
    this.max = max;
    if (entry !== undefined) this.entry = entry;
  }
}
