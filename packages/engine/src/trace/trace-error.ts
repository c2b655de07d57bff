import { FormatError } from '../errors.js';

/** Stable reasons a trace is refused. Tests and callers match on `code`, never on the message. */
export type TraceErrorCode =
  | 'trace-truncated'
  | 'trace-bad-magic'
  | 'trace-unsupported-version'
  | 'trace-bad-codec'
  | 'trace-checksum-mismatch'
  | 'trace-limit-exceeded'
  | 'trace-invalid';

/**
 * Thrown by encodeTrace/decodeTrace for any malformed, corrupt or oversized trace (part of the engine's
 * FormatError family). Never carries input bytes.
 */
export class TraceFormatError extends FormatError {
  declare readonly code: TraceErrorCode;
  constructor(code: TraceErrorCode, message: string) {
    super(message, code);
    this.name = 'TraceFormatError';
  }
}
