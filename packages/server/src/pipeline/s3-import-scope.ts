/**
 * Which `s3://` import URLs an org may name (cluster mode, api.md §7.2): only objects under its
 * own import prefix in the installation's blob store,
 *
 *     s3://<blob bucket>/<blob prefix>/incoming/<orgName>/<any key>
 *
 * read with the blob store's credentials. Anything else the installation's credentials could
 * reach — other buckets, the depot, uploads, another org's prefix — is refused, by the URL's
 * text alone and with one message (never after asking S3: a missing object and a forbidden one
 * must look the same). POST /be/v1/builds checks this; the dltar step checks it again.
 */
import { assertValidKey } from '../storage/blob-store.js';
import { parseS3BlobUrl } from '../storage/create-blob-store.js';

/** Folder of the blob store under which each org has its import prefix `incoming/<orgName>/`. */
export const INCOMING_FOLDER = 'incoming';

/** The installation's blob store bucket and key prefix (cluster mode); s3:// imports read only there. */
export interface S3ImportScope {
  bucket: string;
  /** Without leading or trailing `/`; `''` = the bucket's root. */
  prefix: string;
}

/** The scope of s3:// imports for a blob store URL; undefined for a file:// blob store (s3:// imports are off). */
export function s3ImportScopeOf(blobUrl: string): S3ImportScope | undefined {
  return blobUrl.startsWith('s3://') ? parseS3BlobUrl(blobUrl) : undefined;
}

/** The org's import prefix as a blob store key prefix (relative to the blob store's own prefix). */
export const orgIncomingPrefix = (orgName: string): string => `${INCOMING_FOLDER}/${orgName}/`;

/** The org's import prefix as the s3:// URL a publisher uploads under. */
export function orgIncomingUrl(scope: S3ImportScope, orgName: string): string {
  return `s3://${scope.bucket}/${scope.prefix === '' ? '' : `${scope.prefix}/`}${orgIncomingPrefix(orgName)}`;
}

/** The one message of every refused s3:// import URL of an org (it names only what the org may use). */
export function s3ImportRefusal(scope: S3ImportScope | undefined, orgName: string): string {
  return scope === undefined
    ? 's3:// URLs are not enabled on this installation (cluster mode only)'
    : `an s3:// URL must name an object under ${orgIncomingUrl(scope, orgName)}`;
}

/**
 * The blob store key (relative to the blob store's prefix) that an `s3://` import URL names,
 * when it is an object under the org's import prefix; null for anything else (another bucket,
 * another prefix, `.`/`..`/empty segments, bad percent-encoding, no scope). Compares the raw text:
 * the bucket exactly (S3 bucket names are case-sensitive in requests), the key after decoding.
 */
export function s3ImportKey(url: string, scope: S3ImportScope | undefined, orgName: string): string | null {
  if (scope === undefined) return null;
  const match = /^s3:\/\/([^/?#:@]+)\/([^?#]+)$/.exec(url);
  if (!match || match[1] !== scope.bucket) return null;
  let fullKey: string;
  try {
    fullKey = decodeURIComponent(match[2]);
  } catch {
    return null;
  }
  const base = scope.prefix === '' ? '' : `${scope.prefix}/`;
  if (!fullKey.startsWith(base)) return null;
  const key = fullKey.slice(base.length);
  const own = orgIncomingPrefix(orgName);
  if (!key.startsWith(own) || key.length === own.length) return null;
  try {
    assertValidKey(fullKey);
  } catch {
    return null;
  }
  return key;
}
