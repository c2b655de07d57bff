/**
 * Where published files go inside an origin (api.md §7.3), relative to the origin's prefix:
 *
 *   dxf/{orgName}/{appName}/{buildId:04}/{dxfName}/…        the ROCKIT image
 *   pat/{orgName}/{appName}/{toBuildId:04}/{fromBuildId:04}/…  a patch
 *   dxf/{orgName}/{appName}/release.json                     pointer to the current release, written last
 *
 * Every helper validates its inputs, so a name can never add or climb path segments.
 * Prefixes end with `/` (they name a folder of files); keys do not.
 */
import { StorageError } from '../storage/storage-error.js';

/** api.md: every org, app and deployment name. */
const NAME = /^[A-Za-z0-9_]{2,50}$/;
/** App names may also hold `-` after the first character (domain/names.ts APP_NAME_PATTERN). */
const APP_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]{1,49}$/;
/** An image variant name such as `b0003-t002`. */
const DXF_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function checkName(value: string, what: string): string {
  if (!(what === 'app' ? APP_NAME : NAME).test(value)) throw new StorageError('invalid-key', `${what} ${JSON.stringify(value)} is not a valid name`);
  return value;
}

/** Build ids count 1, 2, 3... and appear zero-padded to at least 4 digits (`0003`, `12345`). */
export function padBuildId(buildId: number): string {
  if (!Number.isSafeInteger(buildId) || buildId < 1) throw new StorageError('invalid-key', `build id ${buildId} is not a positive integer`);
  return String(buildId).padStart(4, '0');
}

export function checkDxfName(dxfName: string): string {
  if (!DXF_NAME.test(dxfName) || dxfName.includes('..')) {
    throw new StorageError('invalid-key', `image name ${JSON.stringify(dxfName)} is not valid`);
  }
  return dxfName;
}

/** `dxf/{org}/{app}/` — every image of the app and its release.json. */
export const appImagesPrefix = (orgName: string, appName: string): string =>
  `dxf/${checkName(orgName, 'organization')}/${checkName(appName, 'app')}/`;

/** `pat/{org}/{app}/` — every patch of the app. */
export const appPatchesPrefix = (orgName: string, appName: string): string =>
  `pat/${checkName(orgName, 'organization')}/${checkName(appName, 'app')}/`;

/** Both prefixes that hold an app's published files (what deleting an app removes). */
export const appPrefixes = (orgName: string, appName: string): string[] => [appImagesPrefix(orgName, appName), appPatchesPrefix(orgName, appName)];

/** `dxf/{org}/{app}/{buildId:04}/{dxfName}/` */
export const imagePrefix = (orgName: string, appName: string, buildId: number, dxfName: string): string =>
  `${appImagesPrefix(orgName, appName)}${padBuildId(buildId)}/${checkDxfName(dxfName)}/`;

/** `pat/{org}/{app}/{toBuildId:04}/{fromBuildId:04}/` */
export function patchPrefix(orgName: string, appName: string, toBuildId: number, fromBuildId: number): string {
  if (fromBuildId >= toBuildId) throw new StorageError('invalid-key', `a patch goes from an older build to a newer one (${fromBuildId} → ${toBuildId})`);
  return `${appPatchesPrefix(orgName, appName)}${padBuildId(toBuildId)}/${padBuildId(fromBuildId)}/`;
}

/** `dxf/{org}/{app}/release.json` */
export const releaseKey = (orgName: string, appName: string): string => `${appImagesPrefix(orgName, appName)}release.json`;

// The content of release.json is defined once, in pipeline/release.ts.
