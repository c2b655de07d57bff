import { describe, expect, it } from 'vitest';
import { isStorageError } from '../storage/storage-error.js';
import { appPrefixes, imagePrefix, padBuildId, patchPrefix, releaseKey } from './layout.js';

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
