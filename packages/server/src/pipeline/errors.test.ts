import { describe, expect, it } from 'vitest';

import { DownloadExitCode, StepError, canceledError, throwIfAborted } from './errors.js';

describe('StepError', () => {
  it('stores only the detail fields that apply, never the cause', () => {
    const e = new StepError('size-mismatch', 'size is 10 bytes, expected 12', {
      sizeBytesActual: 10,
      sizeBytesExpected: 12,
      cause: new Error('secret internals'),
    });
    expect(e.toTaskError()).toEqual({ code: 'size-mismatch', message: 'size is 10 bytes, expected 12', sizeBytesActual: 10, sizeBytesExpected: 12, retryable: false });
    expect(JSON.stringify(e.toTaskError())).not.toContain('secret internals');
  });

  it('copies fileReadFailed so later changes to the input do not leak in', () => {
    const detail = { filename: 'a/../b', typeExpected: 'path inside the game folder', typeDetected: 'path escaping the game folder (..)' };
    const e = new StepError('file-read-failed', 'refused', { fileReadFailed: detail });
    detail.filename = 'changed';
    expect(e.toTaskError().fileReadFailed?.filename).toBe('a/../b');
  });

  it('decides retryability from the failure kind', () => {
    const retryable = (code: ConstructorParameters<typeof StepError>[0], d: ConstructorParameters<typeof StepError>[2] = {}) =>
      new StepError(code, 'm', d).retryable;
    expect(retryable('download-failed', { httpStatus: 404, exitCode: DownloadExitCode.HttpError })).toBe(false);
    expect(retryable('download-failed', { httpStatus: 503, exitCode: DownloadExitCode.HttpError })).toBe(true);
    expect(retryable('download-failed', { httpStatus: 429, exitCode: DownloadExitCode.HttpError })).toBe(true);
    expect(retryable('download-failed', { exitCode: DownloadExitCode.CouldNotConnect })).toBe(true);
    expect(retryable('download-failed', { exitCode: DownloadExitCode.UnsupportedProtocol })).toBe(false);
    expect(retryable('sha256-mismatch')).toBe(false);
    expect(retryable('not-a-tar')).toBe(false);
    expect(retryable('storage-failed')).toBe(true);
    expect(retryable('storage-failed', { retryable: false })).toBe(false);
    expect(retryable('deploy-failed', { deployment: 'cdn_eu' })).toBe(true);
  });

  it('turns an aborted signal into canceled', () => {
    const c = new AbortController();
    expect(() => throwIfAborted(c.signal)).not.toThrow();
    c.abort(new Error('shutdown'));
    expect(() => throwIfAborted(c.signal)).toThrow(StepError);
    expect(canceledError(c.signal).toTaskError()).toMatchObject({ code: 'canceled', message: 'step canceled: shutdown' });
  });
});
