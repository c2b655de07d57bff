/**
 * The one error family of the service. Codes are the stable `error` names of spec/api.md §1.2;
 * each maps to exactly one HTTP status. Services throw these; the HTTP error plugin renders them.
 */
export const ERROR_STATUS = {
  'missing-param': 400,
  'invalid-param': 400,
  'invalid-json': 400,
  'conflicting-credentials': 400,
  /** Not an HTTP request the server can parse (raw protocol errors); decided, not in the contract's table. */
  'bad-request': 400,
  'token-missing': 401,
  'token-expired': 401,
  'token-invalid': 401,
  'invalid-credentials': 401,
  forbidden: 403,
  'account-disabled': 403,
  'not-found': 404,
  'already-exists': 409,
  'in-use': 409,
  'app-locked': 409,
  'invalid-state': 409,
  /** The client took too long to send its request (headers); decided. */
  'request-timeout': 408,
  'payload-too-large': 413,
  /** A path segment over 100 characters; decided (no name in the contract's table). */
  'uri-too-long': 414,
  'unsupported-media-type': 415,
  'rate-limited': 429,
  /** Request headers over Node's limit; decided. */
  'headers-too-large': 431,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** Extra machine-readable fields carried into the error envelope (e.g. `param`, `permission`, `task`). */
export interface ErrorDetails {
  param?: string;
  permission?: string;
  task?: string;
  /** Seconds; the HTTP layer turns it into a Retry-After header. */
  retryAfterSeconds?: number;
  [key: string]: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = details;
  }
}

/** The standard 404 that never reveals whether the object exists in another organization. */
export const notFound = (kind: string, name: string): AppError =>
  new AppError('not-found', `${kind} '${name}' not found`);

export const missingParam = (param: string): AppError =>
  new AppError('missing-param', `${param} is required`, { param });

export const invalidParam = (param: string, why: string): AppError =>
  new AppError('invalid-param', `${param} ${why}`, { param });
