/**
 * An origin: where a deployment publishes (api.md §9.1) — a folder (`fs`, for a static web
 * server) or an S3-compatible bucket (`s3`, behind a CDN), with an optional `originPrefix`.
 * Underneath it is a blob store rooted at the prefix, so the layout keys of `layout.ts` are used
 * as they are. The depot (the installation's own store, served at `/cdn/*`) is an origin too.
 */
import { existsSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { AddressPolicy } from '../net/address-policy.js';
import { assertValidKey, type BlobStore } from '../storage/blob-store.js';
import { createFsBlobStore } from '../storage/fs-blob-store.js';
import { PrefixedBlobStore } from '../storage/prefixed-blob-store.js';
import { createS3BlobStore, type S3BlobStoreOptions } from '../storage/s3-blob-store.js';
import { normalizeS3Endpoint } from '../storage/s3-endpoint.js';
import type { S3ErrorDetail } from '../storage/s3-errors.js';
import { StorageError } from '../storage/storage-error.js';

/** A deployment's origin settings as stored (secrets already decrypted). */
export interface OriginSettings {
  type: 's3' | 'fs';
  originPrefix?: string | null;
  s3?: {
    endpoint: string;
    region: string;
    bucket: string;
    accessKeyId: string;
    secretAccessKey: string;
    forcePathStyle?: boolean | null;
  } | null;
  fs?: { path: string } | null;
}

export interface Origin {
  type: 's3' | 'fs' | 'depot';
  /** Rooted at the origin prefix: layout keys go here unchanged. */
  store: BlobStore;
  /** For logs and deployment status messages; never secrets. */
  location: string;
  close(): Promise<void>;
}

/** A settings problem, naming the request field (`param`) that the HTTP layer reports as invalid-param. */
export interface OriginSettingsProblem {
  param: string;
  message: string;
}

/** `''` or a valid relative path, without leading/trailing `/`. */
export function normalizeOriginPrefix(prefix: string | null | undefined): string {
  const p = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (p !== '') assertValidKey(p);
  return p;
}

/** The first problem of a deployment's origin settings, or null when they can build an origin. */
export function findOriginSettingsProblem(settings: OriginSettings): OriginSettingsProblem | null {
  try {
    normalizeOriginPrefix(settings.originPrefix);
  } catch {
    return { param: 'originPrefix', message: 'originPrefix must be a relative path without "." or ".." segments' };
  }
  if (settings.type === 'fs') {
    if (!settings.fs) return { param: 'fs', message: 'an fs deployment needs fs.path' };
    const p = settings.fs.path;
    if (typeof p !== 'string' || !isAbsolute(p)) return { param: 'fs.path', message: 'fs.path must be an absolute folder path' };
    // eslint-disable-next-line no-control-regex -- NUL and other control characters are what is refused
    if (/[\u0000-\u001f\u007f]/.test(p)) return { param: 'fs.path', message: 'fs.path must not contain control characters' };
    if (p.split('/').some((seg) => seg === '.' || seg === '..')) return { param: 'fs.path', message: 'fs.path must not contain "." or ".." segments' };
    return null;
  }
  if (settings.type === 's3') {
    const s3 = settings.s3;
    if (!s3) return { param: 's3', message: 'an s3 deployment needs s3 settings' };
    for (const field of ['endpoint', 'region', 'bucket', 'accessKeyId', 'secretAccessKey'] as const) {
      if (typeof s3[field] !== 'string' || s3[field] === '') return { param: `s3.${field}`, message: `s3.${field} is required` };
    }
    try {
      normalizeS3Endpoint(s3.endpoint);
    } catch (err) {
      return { param: 's3.endpoint', message: err instanceof Error ? err.message : 'invalid endpoint' };
    }
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(s3.bucket)) {
      return { param: 's3.bucket', message: 's3.bucket must be 3–63 lower-case letters, digits, dots or hyphens' };
    }
    return null;
  }
  return { param: 'type', message: 'type must be "s3" or "fs"' };
}

/** Where fs origins may write, judged by real paths (symlinks and `/proc/self/root` resolved). */
export interface FsOriginPolicy {
  /** Folders fs origins must lie in (ROCKIT_FS_DEPLOYMENT_ROOTS); undefined = anywhere except `dataDir`. */
  roots?: readonly string[];
  /** The installation's data folder (database, blob store): never an origin, nor inside one's reach. */
  dataDir: string;
}

/**
 * The real path of `p` (absolute): the real path of its nearest existing ancestor, with the
 * segments that do not exist yet appended (they cannot be symlinks: they are not there).
 */
export function realPathOfNearest(p: string): string {
  let existing = resolve(p);
  const rest: string[] = [];
  while (!existsSync(existing)) {
    const parent = dirname(existing);
    if (parent === existing) break;
    rest.unshift(existing.slice(parent.length).replace(/^[/\\]+/, ''));
    existing = parent;
  }
  let real: string;
  try {
    real = realpathSync.native(existing);
  } catch {
    real = existing;
  }
  return rest.length === 0 ? real : join(real, ...rest);
}

const isInside = (root: string, target: string): boolean => {
  const rel = relative(root, target);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
};

/**
 * The problem with the folder an fs origin writes to (`fs.path` joined with the origin prefix),
 * judged by real paths: it must lie inside one of the roots (when given) and never inside the data
 * folder. Checked when a deployment is created or changed, and again each time an origin is opened
 * (a folder swapped for a symlink after the check is caught there).
 */
export function findFsPathProblem(settings: OriginSettings, policy: FsOriginPolicy): OriginSettingsProblem | null {
  if (settings.type !== 'fs' || !settings.fs) return null;
  const prefix = normalizeOriginPrefix(settings.originPrefix);
  const target = realPathOfNearest(prefix === '' ? settings.fs.path : join(settings.fs.path, ...prefix.split('/')));
  const roots = policy.roots;
  if (roots !== undefined && !roots.some((root) => isInside(realPathOfNearest(root), target))) {
    return { param: 'fs.path', message: `fs.path must lie inside one of the folders allowed for fs deployments (${roots.join(', ')})` };
  }
  if (isInside(realPathOfNearest(policy.dataDir), target)) {
    return { param: 'fs.path', message: 'fs.path must not be inside the installation\'s data folder' };
  }
  return null;
}

export interface OriginTuning {
  /** Passed to S3 origins (timeouts, part sizes); never credentials. */
  s3?: Pick<S3BlobStoreOptions, 'partSizeBytes' | 'queueSize' | 'connectTimeoutMs' | 'idleTimeoutMs' | 'maxAttempts'>;
  /** fs origins: flush files before they become visible (default true). */
  fsync?: boolean;
  /** S3 origins connect only to addresses this policy allows (the SSRF guard); absent = any address. */
  addressPolicy?: AddressPolicy;
  /** fs origins are refused when their real path breaks this policy; absent = not checked. */
  fsPolicy?: FsOriginPolicy;
  /** What S3 origins' errors leave out of their messages (for the server's log). */
  logS3Error?: (detail: S3ErrorDetail) => void;
}

/** Builds an origin; throws `StorageError('invalid-config')` with the problem's message. */
export function createOrigin(settings: OriginSettings, tuning: OriginTuning = {}): Origin {
  const problem = findOriginSettingsProblem(settings);
  if (problem) throw new StorageError('invalid-config', `${problem.param}: ${problem.message}`);
  const prefix = normalizeOriginPrefix(settings.originPrefix);
  if (settings.type === 'fs') {
    const fsProblem = tuning.fsPolicy ? findFsPathProblem(settings, tuning.fsPolicy) : null;
    if (fsProblem) throw new StorageError('invalid-config', `${fsProblem.param}: ${fsProblem.message}`);
    const root = prefix === '' ? settings.fs!.path : join(settings.fs!.path, ...prefix.split('/'));
    const store = createFsBlobStore({ root, ...(tuning.fsync !== undefined ? { fsync: tuning.fsync } : {}) });
    return { type: 'fs', store, location: store.describe().location, close: () => store.close() };
  }
  const s3 = settings.s3!;
  const store = createS3BlobStore({
    ...tuning.s3,
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: s3.bucket,
    prefix,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: s3.forcePathStyle ?? false,
    // An org user's endpoint: checked addresses only, and errors that echo nothing of the target.
    ...(tuning.addressPolicy ? { addressPolicy: tuning.addressPolicy } : {}),
    opaqueErrors: true,
    ...(tuning.logS3Error ? { logError: tuning.logS3Error } : {}),
  });
  return { type: 's3', store, location: store.describe().location, close: () => store.close() };
}

/** The depot as an origin: the installation's blob store under `prefix` (default `cdn`), served at `/cdn/*`. */
export function createDepotOrigin(blobStore: BlobStore, prefix = 'cdn'): Origin {
  const store = new PrefixedBlobStore(blobStore, prefix);
  return { type: 'depot', store, location: store.describe().location, close: async () => {} };
}
