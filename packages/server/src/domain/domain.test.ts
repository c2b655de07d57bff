import { describe, expect, it } from 'vitest';
import { AppError, ERROR_STATUS } from './errors.js';
import { parseListQuery, project } from './list.js';
import { isValidName } from './names.js';
import { allPermissions, firstUncovered, hasPermission, noPermissions, permissionName, unionPermissions, validatePermissions, RESOURCES } from './permissions.js';
import { constantTimeEqual, hashPassword, sha256Hex, verifyPassword } from './secrets.js';
import { IMPORT_TASK_TYPES, isImportTaskType } from './task-types.js';

describe('permissions', () => {
  it('has the 12 documented resources and names refusals as the pages do', () => {
    expect(RESOURCES).toHaveLength(12);
    expect(permissionName('apps', 'create')).toBe('apps.create');
    expect(permissionName('beUsers', 'update')).toBe('users.update');
    expect(permissionName('tasks', 'execute')).toBe('trigger.create');
  });
  it('ORs roles and checks bits', () => {
    const p = unionPermissions([{ apps: 2 }, { apps: 4, tasks: 16 }]);
    expect(p.apps).toBe(6);
    expect(hasPermission(p, 'apps', 'update')).toBe(true);
    expect(hasPermission(p, 'apps', 'create')).toBe(false);
    expect(hasPermission(p, 'tasks', 'execute')).toBe(true);
  });
  it('refuses bits a resource lacks, naming the resource', () => {
    expect(validatePermissions({ consumption: 2, trainings: 6, tasks: 31 })).toEqual({ consumption: 2, trainings: 6, tasks: 31 });
    for (const bad of [{ consumption: 1 }, { trainings: 8 }, { apps: 16 }, { apps: 1.5 }, { x: 1 }]) {
      const key = Object.keys(bad)[0];
      expect(() => validatePermissions(bad)).toThrow(expect.objectContaining({ code: 'invalid-param', details: { param: `permissions.${key}` } }));
    }
  });
});

describe('no escalation: firstUncovered', () => {
  it('names the first bit of the grant the holder lacks, in resource then bit order', () => {
    const holder = { ...noPermissions(), beUsers: 3, apps: 2 };
    expect(firstUncovered(holder, {})).toBeUndefined();
    expect(firstUncovered(holder, { beUsers: 2, apps: 2 })).toBeUndefined();
    expect(firstUncovered(holder, { beUsers: 7 })).toEqual({ resource: 'beUsers', action: 'update' });
    expect(firstUncovered(holder, { apps: 3, tasks: 16 })).toEqual({ resource: 'apps', action: 'create' });
    expect(firstUncovered(holder, { tasks: 16 })).toEqual({ resource: 'tasks', action: 'execute' });
    expect(firstUncovered(holder, allPermissions())).toEqual({ resource: 'apps', action: 'create' });
    expect(firstUncovered(allPermissions(), allPermissions())).toBeUndefined();
  });
});

describe('list queries', () => {
  const spec = { orderable: ['name', 'created'], fields: ['name', 'label', 'created'], defaultOrder: [{ field: 'name', desc: false }] };
  it('parses the three order forms and comma-separated fields', () => {
    expect(parseListQuery({ order: ['-created', '+name', '[-name]', 'created'], fields: ['name,label', 'created'] }, spec)).toEqual({
      offset: 0, limit: 10,
      order: [{ field: 'created', desc: true }, { field: 'name', desc: false }, { field: 'name', desc: true }, { field: 'created', desc: false }],
      fields: ['name', 'label', 'created'],
    });
  });
  it('refuses out-of-range windows and unknown names', () => {
    for (const raw of [{ limit: 0 }, { limit: 1001 }, { offset: -1 }, { order: ['label'] }, { fields: ['secret'] }]) {
      expect(() => parseListQuery(raw, spec)).toThrow(AppError);
    }
  });
  it('projects', () => {
    expect(project({ a: 1, b: 2, c: 3 }, ['c', 'a'])).toEqual({ c: 3, a: 1 });
    expect(project({ a: 1 }, undefined)).toEqual({ a: 1 });
  });
});

describe('names, errors', () => {
  it('validates names', () => {
    expect(isValidName('ab')).toBe(true);
    expect(isValidName('a'.repeat(50))).toBe(true);
    for (const bad of ['a', 'a'.repeat(51), 'a-b', 'a b', 'ä_b', '']) expect(isValidName(bad)).toBe(false);
  });
  it('maps every code to its status', () => {
    expect(new AppError('forbidden', 'x', { permission: 'apps.create' })).toMatchObject({ status: 403, details: { permission: 'apps.create' } });
    expect(ERROR_STATUS['rate-limited']).toBe(429);
    expect(ERROR_STATUS['conflicting-credentials']).toBe(400);
  });
});

describe('secrets', () => {
  it('hashes passwords with salt and verifies them', async () => {
    const h1 = await hashPassword('correct horse', 1024);
    const h2 = await hashPassword('correct horse', 1024);
    expect(h1).not.toBe(h2);
    expect(h1).toMatch(/^scrypt\$1024\$/);
    expect(await verifyPassword('correct horse', h1)).toBe(true);
    expect(await verifyPassword('wrong horse', h1)).toBe(false);
    expect(await verifyPassword('x', 'garbage')).toBe(false);
  });
  it('compares in constant time and hashes tokens', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
    expect(sha256Hex('x')).toHaveLength(64);
  });
});


describe('task types', () => {
  it('knows the import pipeline steps, in order, and nothing else', () => {
    expect(IMPORT_TASK_TYPES).toEqual(['dltar', 'mkraw', 'deploy']);
    expect(['dltar', 'mkraw', 'deploy', 'trace', 'webhook', 'cleanup', ''].filter(isImportTaskType)).toEqual(['dltar', 'mkraw', 'deploy']);
  });
});
