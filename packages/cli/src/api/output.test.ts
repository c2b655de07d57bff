import { describe, expect, it } from 'vitest';
import { ApiError, NetworkError } from './client.js';
import { TaskFailedError } from './follow-tasks.js';
import { describeError, errorToJson, formatAge, formatTable } from './output.js';

describe('output', () => {
  it('describes an API error with its name, param, extra fields, request id and hint', () => {
    const err = new ApiError({ status: 403, error: 'forbidden', message: 'not allowed', param: 'x', requestId: 'r1', details: { permission: 'apps.create' }, hint: 'ask an admin' });
    expect(describeError(err)).toBe(
      'rockit: not allowed\n  error: forbidden (HTTP 403), param: x, permission=apps.create\n  request id: r1\n  hint: ask an admin',
    );
    expect(errorToJson(err)).toEqual({ status: 'error', error: 'forbidden', message: 'not allowed', httpStatus: 403, param: 'x', requestId: 'r1', permission: 'apps.create' });
  });

  it('describes a failed task with every documented detail field', () => {
    const err = new TaskFailedError({ name: 't_1', type: 'dltar', status: 'failed', error: { message: 'download failed', httpStatus: 404, sizeBytesActual: 1, sizeBytesExpected: 2 } });
    expect(describeError(err)).toBe('rockit: task t_1 (dltar) failed: download failed\n  httpStatus: 404\n  sizeBytesActual: 1\n  sizeBytesExpected: 2');
    expect(errorToJson(err)).toMatchObject({ error: 'task-failed', task: { name: 't_1' } });
    expect(errorToJson(new NetworkError('down'))).toEqual({ status: 'error', error: 'network', message: 'down' });
  });

  it('pads table columns and formats ages', () => {
    expect(formatTable(['A', 'BB'], [['long', 'x'], ['s', '']])).toBe('A     BB\nlong  x\ns\n');
    const now = 1_000_000 * 1000;
    expect([formatAge(now / 1000 - 5, now), formatAge(now / 1000 - 600, now), formatAge(now / 1000 - 7200, now), formatAge(now / 1000 - 3 * 86400, now), formatAge(null, now)]).toEqual([
      '5s', '10m', '2h', '3d', '-',
    ]);
  });
});
