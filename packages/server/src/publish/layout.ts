/**
 * Where published files go inside an origin (api.md §7.3), relative to the origin's prefix:
 *
 *   dxf/{orgName}/{appName}/{buildId:04}/{dxfName}/…        the ROCKIT image
 *   pat/{orgName}/{appName}/{toBuildId:04}/{fromBuildId:04}/…  a patch
 *   dxf/{orgName}/{appName}/release.json                     pointer to the current release, written last
 *
 * and, in the installation's blob store beside the depot (never published):
 *
 *   imports/{orgId}/{taskName}.tar                           an import's tar (upload or download)
 *   imports/{orgId}/{taskName}.rkdl                          a delta import's upload (assembled into the .tar by dltar)
 *
 * This file is the one definition of these keys. Every helper validates its inputs, so a name can
 * never add or climb path segments. Prefixes end with `/` (they name a folder of files); keys do not.
 */
import { StorageError } from '../storage/storage-error.js';

/** api.md: every org, app and deployment name. */
const NAME = /^[A-Za-z0-9_]{2,50}$/;
/** App names may also hold `-` after the first character (domain/names.ts APP_NAME_PATTERN). */
const APP_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]{1,49}$/;
/** An image variant name such as `b0003-t002`. */
const DXF_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Record ids (UUIDs) and task names (`t_…`) as key segments. */
const ID = /^[A-Za-z0-9_-]{1,64}$/;

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

function checkId(value: string, what: string): string {
  if (!ID.test(value)) throw new StorageError('invalid-key', `${what} ${JSON.stringify(value)} is not a valid id`);
  return value;
}

/** Both prefixes that hold an org's published files (what deleting an org removes from every origin). */
export const orgPrefixes = (orgName: string): string[] => [`dxf/${checkName(orgName, 'organization')}/`, `pat/${checkName(orgName, 'organization')}/`];

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

/** `dxf/{org}/{app}/{buildId:04}/` — every image variant of one build. */
export const dxfBuildPrefix = (orgName: string, appName: string, buildId: number): string =>
  `${appImagesPrefix(orgName, appName)}${padBuildId(buildId)}/`;

/** `pat/{org}/{app}/{toBuildId:04}/` — every patch to one build. */
export const patchTargetPrefix = (orgName: string, appName: string, toBuildId: number): string =>
  `${appPatchesPrefix(orgName, appName)}${padBuildId(toBuildId)}/`;

/**
 * The dxfName of an image (api.md §7.1, decided): `b{buildId:04}-t{training:03}`. A freshly imported,
 * untrained image is training 0 (`b0003-t000`); every re-sequencing from traces counts up.
 */
export function dxfNameFor(buildId: number, training = 0): string {
  if (!Number.isSafeInteger(training) || training < 0 || training > 999) throw new RangeError(`invalid training number ${training}`);
  return `b${padBuildId(buildId)}-t${String(training).padStart(3, '0')}`;
}

/** `imports/` — every import's tar; the only multipart uploads the upload service owns. */
export const IMPORTS_PREFIX = 'imports/';

/** `imports/{orgId}/` — every import tar of an org. */
export const orgImportsPrefix = (orgId: string): string => `${IMPORTS_PREFIX}${checkId(orgId, 'organization id')}/`;

/** `imports/{orgId}/{taskName}.tar` — an import's tar, keyed by its dltar task. */
export const importTarKey = (orgId: string, taskName: string): string => `${orgImportsPrefix(orgId)}${checkId(taskName, 'task name')}.tar`;

/** `imports/{orgId}/{taskName}.rkdl` — a delta import's upload (docs/FORMATS.md, "Delta"), keyed by its dltar task. */
export const importDeltaKey = (orgId: string, taskName: string): string => `${orgImportsPrefix(orgId)}${checkId(taskName, 'task name')}.rkdl`;
/** Whether an import's upload key is a delta's (`importDeltaKey`), not a tar's. */
export const isImportDeltaKey = (key: string): boolean => key.endsWith('.rkdl');

/** Joins a store prefix ('' or with or without a trailing '/') and a relative key. */
export function joinKey(prefix: string, key: string): string {
  if (prefix === '') return key;
  return prefix.endsWith('/') ? prefix + key : `${prefix}/${key}`;
}

// The content of release.json is defined once, in pipeline/release.ts.
