// The delta format's errors: one class, two stable codes the server turns into task errors.
import { EngineError } from '../errors.js';

export type DeltaErrorCode = 'not-a-delta' | 'unknown-chunk';

/**
 * `not-a-delta`: the bytes do not follow the delta format (bad magic or version, a malformed, truncated,
 * lying or over-limit record, a path escaping the root, a bad trailer checksum). `unknown-chunk`: a
 * reference names a chunk the lookup does not have (`chunkId`, hex), e.g. rotated away since it was asked.
 */
export class DeltaError extends EngineError {
  override readonly code: DeltaErrorCode;
  readonly chunkId?: string;
  constructor(code: DeltaErrorCode, message: string, chunkId?: string) {
    super(code, message);
    this.name = 'DeltaError';
    this.code = code;
    if (chunkId !== undefined) this.chunkId = chunkId;
  }
}
