// Pipeline additions to the documented publication layout (publish/layout.ts, api.md §7.3): the
// per-build and per-target folders that rotation deletes, and the dxfName of a new image.
// Every folder path ends in '/'; names are validated by publish/layout.ts.
import { appImagesPrefix, appPatchesPrefix, imagePrefix, padBuildId, patchPrefix, releaseKey } from '../publish/layout.js';

export { appImagesPrefix, appPatchesPrefix, imagePrefix, padBuildId, patchPrefix, releaseKey };

/**
 * The dxfName of an image (api.md §7.1, decided): `b{buildId:04}-t{training:03}`. A freshly imported,
 * untrained image is training 0 (`b0003-t000`); every re-sequencing from traces counts up.
 */
export function dxfNameFor(buildId: number, training = 0): string {
  if (!Number.isSafeInteger(training) || training < 0 || training > 999) throw new RangeError(`invalid training number ${training}`);
  return `b${padBuildId(buildId)}-t${String(training).padStart(3, '0')}`;
}

/** `dxf/{org}/{app}/{buildId:04}/` — every image variant of one build. */
export function dxfBuildPrefix(org: string, app: string, buildId: number): string {
  return `${appImagesPrefix(org, app)}${padBuildId(buildId)}/`;
}

/** `pat/{org}/{app}/{toBuildId:04}/` — every patch to one build. */
export function patchTargetPrefix(org: string, app: string, toBuildId: number): string {
  return `${appPatchesPrefix(org, app)}${padBuildId(toBuildId)}/`;
}

/** Joins a store prefix ('' or with or without a trailing '/') and a relative key. */
export function joinKey(prefix: string, key: string): string {
  if (prefix === '') return key;
  return prefix.endsWith('/') ? prefix + key : `${prefix}/${key}`;
}
