import { describe, expect, it } from 'vitest';

import { buildRelease, parseRelease, planCleanup, ReleaseFormatError, serializeRelease, type ReleaseDocument } from './release.js';

function release(buildId: number, from: number[], dxfName = `b${String(buildId).padStart(4, '0')}-t000`): ReleaseDocument {
  return buildRelease({
    orgName: 'acme',
    appName: 'demo',
    buildId,
    buildName: `1.${buildId}`,
    dxfName,
    manifestFile: 'manifest-0123.rkm',
    imageSizeBytes: 1000 * buildId,
    patches: from.map((f) => ({ fromBuildId: f, sizeBytes: 10 * f })),
    created: 1_700_000_000 + buildId,
  });
}

describe('release.json', () => {
  it('has the documented fields and paths, patches newest first', () => {
    expect(release(3, [1, 2])).toEqual({
      format: 'rockit-release',
      formatVersion: 1,
      orgName: 'acme',
      appName: 'demo',
      buildId: 3,
      buildName: '1.3',
      dxfName: 'b0003-t000',
      image: { path: 'dxf/acme/demo/0003/b0003-t000/', manifest: 'manifest-0123.rkm', sizeBytes: 3000 },
      patches: [
        { fromBuildId: 2, toBuildId: 3, path: 'pat/acme/demo/0003/0002/', sizeBytes: 20 },
        { fromBuildId: 1, toBuildId: 3, path: 'pat/acme/demo/0003/0001/', sizeBytes: 10 },
      ],
      created: 1_700_000_003,
    });
  });

  it('round-trips through serialize and parse with stable bytes', () => {
    const r = release(5, [4, 3, 2]);
    const bytes = serializeRelease(r);
    expect(parseRelease(bytes)).toEqual(r);
    expect(serializeRelease(parseRelease(bytes)).equals(bytes)).toBe(true);
  });

  it('refuses documents that are not valid releases', () => {
    const good = JSON.parse(serializeRelease(release(2, [1])).toString()) as Record<string, unknown>;
    const bad: unknown[] = [
      'not json',
      { ...good, format: 'other' },
      { ...good, formatVersion: 2 },
      { ...good, buildId: '2' },
      { ...good, image: { path: 'dxf/acme/demo/0002/../../x/', manifest: 'm', sizeBytes: 1 } },
      { ...good, patches: [{ fromBuildId: 1, toBuildId: 2, path: 'pat/acme/other/0002/0001/', sizeBytes: 1 }] },
      { ...good, orgName: '../x' },
    ];
    for (const b of bad) {
      expect(() => parseRelease(typeof b === 'string' ? b : JSON.stringify(b)), JSON.stringify(b)).toThrow(ReleaseFormatError);
    }
  });
});

describe('planCleanup', () => {
  const now = 1_800_000_000;

  it('plans nothing for the first release', () => {
    expect(planCleanup(null, release(1, []), now, 86_400)).toEqual({ notBefore: now + 86_400, origins: [], depot: [] });
  });

  it('rotates: the oldest build and every patch starting from it go, nothing the new release references', () => {
    // maxBuilds 3: release 3 keeps 3, 2, 1; release 4 keeps 4, 3, 2.
    const prev = release(3, [2, 1]);
    const next = release(4, [3, 2]);
    const plan = planCleanup(prev, next, now, 3600);
    expect(plan.notBefore).toBe(now + 3600);
    // Origins publish only the current image: build 3's image and all patches to 3 (incl. 1→3) go.
    expect(plan.origins).toEqual(['dxf/acme/demo/0003/', 'pat/acme/demo/0003/']);
    // The depot keeps the images of kept builds 3 and 2 (mkraw patches from them); build 1 goes.
    expect(plan.depot).toEqual(['dxf/acme/demo/0001/', 'pat/acme/demo/0003/']);
    const referenced = [next.image.path, ...next.patches.map((p) => p.path), 'dxf/acme/demo/0003/', 'dxf/acme/demo/0002/'];
    for (const p of plan.depot) expect(referenced.some((r) => r.startsWith(p) || p.startsWith(r))).toBe(false);
  });

  it('replaces only the image variant when the same build is re-sequenced', () => {
    const prev = release(4, [3, 2], 'b0004-t000');
    const next = release(4, [3, 2], 'b0004-t001');
    const plan = planCleanup(prev, next, now, 0);
    expect(plan.origins).toEqual(['dxf/acme/demo/0004/b0004-t000/']);
    expect(plan.depot).toEqual(['dxf/acme/demo/0004/b0004-t000/']);
  });

  it('plans nothing when the release did not change, and never negative grace', () => {
    const r = release(4, [3, 2]);
    expect(planCleanup(r, r, now, -5)).toEqual({ notBefore: now, origins: [], depot: [] });
  });

  it('drops patches of builds no longer kept when maxBuilds shrinks', () => {
    const prev = release(4, [3, 2], 'b0004-t000');
    const next = release(4, [3], 'b0004-t000');
    const plan = planCleanup(prev, next, now, 0);
    expect(plan.origins).toEqual(['pat/acme/demo/0004/0002/']);
    expect(plan.depot).toEqual(['dxf/acme/demo/0002/', 'pat/acme/demo/0004/0002/']);
  });
});
