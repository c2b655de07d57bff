// release.json (api.md §7.3, decided): the pointer a launcher reads first, written last on every
// origin. It names the current build and image variant and the direct patches to it. All paths are
// relative to the origin's prefix, so the same document is valid on the depot and on every origin.

import { dxfBuildPrefix, imagePrefix, patchPrefix, patchTargetPrefix, releaseKey } from '../publish/layout.js';

/** `format` field of release.json: says what the document is (as image.json's does). */
export const RELEASE_FORMAT = 'rockit-release';
/** Version of the release.json document. Readers refuse a higher version. */
export const RELEASE_FORMAT_VERSION = 1;

export interface ReleaseImage {
  /** Folder of the image, relative to the origin prefix, ending in '/': `dxf/{org}/{app}/{buildId:04}/{dxfName}/`. */
  path: string;
  /** File name of the image's manifest inside `path` (content-addressed). */
  manifest: string;
  /** Sum of the sizes of every file of the image folder. */
  sizeBytes: number;
}

export interface ReleasePatch {
  fromBuildId: number;
  toBuildId: number;
  /** Folder of the patch, relative to the origin prefix, ending in '/': `pat/{org}/{app}/{to:04}/{from:04}/`. */
  path: string;
  /** Sum of the sizes of every file of the patch folder. */
  sizeBytes: number;
}

/** The release.json document, format version 1. */
export interface ReleaseDocument {
  format: typeof RELEASE_FORMAT;
  formatVersion: number;
  orgName: string;
  appName: string;
  buildId: number;
  buildName: string;
  dxfName: string;
  image: ReleaseImage;
  /** Direct patches to `buildId`, one per kept previous build, newest first. */
  patches: ReleasePatch[];
  /** UNIX seconds when the release was made. */
  created: number;
}

export interface BuildReleaseInput {
  orgName: string;
  appName: string;
  buildId: number;
  buildName: string;
  dxfName: string;
  manifestFile: string;
  imageSizeBytes: number;
  patches: Array<{ fromBuildId: number; sizeBytes: number }>;
  /** UNIX seconds. */
  created: number;
}

/** Assembles the release document of a build with the documented paths. Patches are sorted newest first. */
export function buildRelease(input: BuildReleaseInput): ReleaseDocument {
  const { orgName, appName, buildId } = input;
  return {
    format: RELEASE_FORMAT,
    formatVersion: RELEASE_FORMAT_VERSION,
    orgName,
    appName,
    buildId,
    buildName: input.buildName,
    dxfName: input.dxfName,
    image: {
      path: imagePrefix(orgName, appName, buildId, input.dxfName),
      manifest: input.manifestFile,
      sizeBytes: input.imageSizeBytes,
    },
    patches: [...input.patches]
      .sort((a, b) => b.fromBuildId - a.fromBuildId)
      .map((p) => ({
        fromBuildId: p.fromBuildId,
        toBuildId: buildId,
        path: patchPrefix(orgName, appName, buildId, p.fromBuildId),
        sizeBytes: p.sizeBytes,
      })),
    created: input.created,
  };
}

/** The key of an app's release.json relative to an origin prefix. */
export function releasePath(release: Pick<ReleaseDocument, 'orgName' | 'appName'>): string {
  return releaseKey(release.orgName, release.appName);
}

/** Serialises with a stable field order (so rewriting an unchanged release gives the same bytes). */
export function serializeRelease(release: ReleaseDocument): Buffer {
  const ordered: ReleaseDocument = {
    format: RELEASE_FORMAT,
    formatVersion: release.formatVersion,
    orgName: release.orgName,
    appName: release.appName,
    buildId: release.buildId,
    buildName: release.buildName,
    dxfName: release.dxfName,
    image: { path: release.image.path, manifest: release.image.manifest, sizeBytes: release.image.sizeBytes },
    patches: release.patches.map((p) => ({
      fromBuildId: p.fromBuildId,
      toBuildId: p.toBuildId,
      path: p.path,
      sizeBytes: p.sizeBytes,
    })),
    created: release.created,
  };
  return Buffer.from(JSON.stringify(ordered, null, 2) + '\n', 'utf8');
}

/** Error thrown by `parseRelease` for a document that is not a valid release.json. */
export class ReleaseFormatError extends Error {
  override readonly name = 'ReleaseFormatError';
}

/**
 * Parses and validates a release.json (bytes or text). Unknown extra fields are ignored (forward
 * compatible within a major version); missing or mistyped fields, a newer format version, or a path
 * that does not match the documented layout for the document's own org/app/build throw
 * `ReleaseFormatError`.
 */
export function parseRelease(data: Buffer | string): ReleaseDocument {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    throw new ReleaseFormatError('release.json is not JSON');
  }
  const o = asObject(raw, 'release');
  if (o.format !== RELEASE_FORMAT) throw new ReleaseFormatError(`release.json: format must be "${RELEASE_FORMAT}"`);
  const formatVersion = asInt(o.formatVersion, 'formatVersion');
  if (formatVersion < 1 || formatVersion > RELEASE_FORMAT_VERSION) {
    throw new ReleaseFormatError(`release.json format version ${formatVersion} is not supported`);
  }
  const orgName = asString(o.orgName, 'orgName');
  const appName = asString(o.appName, 'appName');
  const buildId = asInt(o.buildId, 'buildId');
  const dxfName = asString(o.dxfName, 'dxfName');
  const img = asObject(o.image, 'image');
  const image: ReleaseImage = {
    path: asString(img.path, 'image.path'),
    manifest: asString(img.manifest, 'image.manifest'),
    sizeBytes: asInt(img.sizeBytes, 'image.sizeBytes'),
  };
  if (image.path !== layoutPath(() => imagePrefix(orgName, appName, buildId, dxfName))) {
    throw new ReleaseFormatError('image.path does not match the documented layout');
  }
  if (!Array.isArray(o.patches)) throw new ReleaseFormatError('patches must be an array');
  const patches = o.patches.map((p: unknown, i: number): ReleasePatch => {
    const po = asObject(p, `patches[${i}]`);
    const patch = {
      fromBuildId: asInt(po.fromBuildId, `patches[${i}].fromBuildId`),
      toBuildId: asInt(po.toBuildId, `patches[${i}].toBuildId`),
      path: asString(po.path, `patches[${i}].path`),
      sizeBytes: asInt(po.sizeBytes, `patches[${i}].sizeBytes`),
    };
    if (patch.toBuildId !== buildId || patch.path !== layoutPath(() => patchPrefix(orgName, appName, buildId, patch.fromBuildId))) {
      throw new ReleaseFormatError(`patches[${i}] does not match the documented layout`);
    }
    return patch;
  });
  return {
    format: RELEASE_FORMAT,
    formatVersion,
    orgName,
    appName,
    buildId,
    buildName: asString(o.buildName, 'buildName'),
    dxfName,
    image,
    patches,
    created: asInt(o.created, 'created'),
  };
}

/** A documented path for the document's names; names the layout refuses make the document invalid. */
function layoutPath(make: () => string): string {
  try {
    return make();
  } catch (err) {
    throw new ReleaseFormatError(`release.json names an invalid path: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function asObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ReleaseFormatError(`${what} must be an object`);
  return v as Record<string, unknown>;
}
function asString(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new ReleaseFormatError(`${what} must be a string`);
  return v;
}
function asInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new ReleaseFormatError(`${what} must be a non-negative integer`);
  }
  return v;
}

/**
 * What a release change makes unneeded. Prefixes are relative to an origin prefix and end in '/'.
 * The depot keeps the images of every kept build (mkraw patches from them); the deployments' origins
 * only need the current image and the patches to it.
 */
export interface CleanupPlan {
  /** UNIX seconds from which the prefixes may be deleted (clients mid-download had the grace period). */
  notBefore: number;
  /** Prefixes to delete on the deployments' origins. */
  origins: string[];
  /** Prefixes to delete in the depot. */
  depot: string[];
}

/**
 * Decides what becomes unneeded when `next` replaces `previous` as an app's release, and when it may
 * go. Rotation (api.md §7.2): the build that left the kept set (the oldest) loses its image folder in
 * the depot; the previous current build's patches (which include every patch starting from the
 * oldest build) go everywhere; the previous current image goes from the origins. Invariant: no
 * returned prefix contains, or lies inside, anything `next` references (its image, its patches and,
 * in the depot, the images of its kept builds). With no previous release, or the same release, the
 * plan is empty. `now` is UNIX seconds; `gracePeriodSeconds` ≥ 0.
 */
export function planCleanup(
  previous: ReleaseDocument | null | undefined,
  next: ReleaseDocument,
  now: number,
  gracePeriodSeconds: number,
): CleanupPlan {
  const notBefore = now + Math.max(0, gracePeriodSeconds);
  if (!previous) return { notBefore, origins: [], depot: [] };
  if (previous.orgName !== next.orgName || previous.appName !== next.appName) {
    throw new Error('planCleanup: releases of different apps');
  }
  const { orgName: org, appName: app } = next;

  const prevKept = keptBuildIds(previous);
  const nextKept = keptBuildIds(next);

  // Patches: all of them target the previous current build; when the build changed, its whole
  // patch folder goes (also strays from an interrupted earlier run).
  const patchGone: string[] = [];
  if (previous.buildId !== next.buildId) {
    patchGone.push(patchTargetPrefix(org, app, previous.buildId));
  } else {
    const nextPaths = new Set(next.patches.map((p) => p.path));
    for (const p of previous.patches) if (!nextPaths.has(p.path)) patchGone.push(p.path);
  }

  // Origins: only the current image is published there, so the previous one goes whole.
  const originImageGone: string[] = [];
  if (previous.buildId !== next.buildId) originImageGone.push(dxfBuildPrefix(org, app, previous.buildId));
  else if (previous.image.path !== next.image.path) originImageGone.push(previous.image.path);

  // Depot: images of builds no longer kept; a replaced variant of a still-kept build.
  const depotImageGone: string[] = [];
  for (const b of prevKept) if (!nextKept.has(b)) depotImageGone.push(dxfBuildPrefix(org, app, b));
  if (previous.buildId === next.buildId && previous.image.path !== next.image.path) {
    depotImageGone.push(previous.image.path);
  }

  const originRefs = [next.image.path, ...next.patches.map((p) => p.path), releasePath(next)];
  // The depot also holds the kept builds' images, whose dxf variant the release does not name:
  // protect the whole build folder of every kept build except where a variant was replaced above.
  const depotRefs = [...originRefs, ...[...nextKept].filter((b) => b !== next.buildId).map((b) => dxfBuildPrefix(org, app, b))];

  return {
    notBefore,
    origins: keepSafe(dedupe([...originImageGone, ...patchGone]), originRefs),
    depot: keepSafe(dedupe([...depotImageGone, ...patchGone]), depotRefs),
  };
}

/** Builds a release keeps: its own and each patch's source. */
export function keptBuildIds(release: ReleaseDocument): Set<number> {
  return new Set([release.buildId, ...release.patches.map((p) => p.fromBuildId)]);
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)].sort();
}

/** Drops any prefix that overlaps (contains or lies inside) a referenced path. */
function keepSafe(prefixes: string[], referenced: string[]): string[] {
  return prefixes.filter((p) => !referenced.some((r) => r.startsWith(p) || p.startsWith(r)));
}
