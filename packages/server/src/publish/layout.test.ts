import { describe, expect, it } from 'vitest';
import { isStorageError } from '../storage/storage-error.js';
import { appPrefixes, dxfBuildPrefix, dxfNameFor, imagePrefix, importTarKey, joinKey, orgImportsPrefix, orgPrefixes, padBuildId, patchPrefix, patchTargetPrefix, releaseKey } from './layout.js';

function invalid(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (e) {
    return isStorageError(e, 'invalid-key');
  }
}

describe('publish layout (api.md §7.3)', () => {
  it('builds the documented paths', () => {
    expect(imagePrefix('acme', 'demo', 3, 'b0003-t002')).toBe('dxf/acme/demo/0003/b0003-t002/');
    expect(patchPrefix('acme', 'demo', 3, 1)).toBe('pat/acme/demo/0003/0001/');
    expect(releaseKey('acme', 'demo')).toBe('dxf/acme/demo/release.json');
    expect(appPrefixes('acme', 'demo')).toEqual(['dxf/acme/demo/', 'pat/acme/demo/']);
    expect(padBuildId(12345)).toBe('12345');
    expect(orgPrefixes('acme')).toEqual(['dxf/acme/', 'pat/acme/']);
    expect(dxfBuildPrefix('acme', 'demo', 3)).toBe('dxf/acme/demo/0003/');
    expect(patchTargetPrefix('acme', 'demo', 3)).toBe('pat/acme/demo/0003/');
    expect(dxfNameFor(3)).toBe('b0003-t000');
    expect(dxfNameFor(3, 12)).toBe('b0003-t012');
    expect(joinKey('cdn', 'dxf/a')).toBe('cdn/dxf/a');
    expect(joinKey('', 'dxf/a')).toBe('dxf/a');
  });

  it('keys import tars by org id and task name, beside the depot', () => {
    const orgId = '0b3c9a8e-5f7d-4a51-9d7e-2c1f0e6b4a11';
    expect(orgImportsPrefix(orgId)).toBe(`imports/${orgId}/`);
    expect(importTarKey(orgId, 't_01JABCDEF')).toBe(`imports/${orgId}/t_01JABCDEF.tar`);
    expect(invalid(() => orgImportsPrefix('../other'))).toBe(true);
    expect(invalid(() => orgImportsPrefix(''))).toBe(true);
    expect(invalid(() => importTarKey(orgId, 'a/b'))).toBe(true);
    expect(invalid(() => importTarKey(orgId, '..'))).toBe(true);
    expect(invalid(() => orgPrefixes('a/b'))).toBe(true);
  });

  it('refuses names and ids that would change the path structure', () => {
    expect(invalid(() => imagePrefix('../x', 'demo', 1, 'b1'))).toBe(true);
    expect(invalid(() => imagePrefix('acme', 'de/mo', 1, 'b1'))).toBe(true);
    expect(invalid(() => imagePrefix('acme', 'demo', 1, '..'))).toBe(true);
    expect(invalid(() => imagePrefix('acme', 'demo', 1, 'a/b'))).toBe(true);
    expect(invalid(() => imagePrefix('acme', 'demo', 0, 'b1'))).toBe(true);
    expect(invalid(() => imagePrefix('acme', 'demo', 1.5, 'b1'))).toBe(true);
    expect(invalid(() => patchPrefix('acme', 'demo', 2, 2))).toBe(true);
    expect(invalid(() => releaseKey('a', 'demo'))).toBe(true);
  });
});
