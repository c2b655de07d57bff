/**
 * Builds the installation's blob store (the depot) from its configuration: `file:///abs/folder`
 * (embedded mode) or `s3://bucket/optional/prefix` plus endpoint and credentials (cluster mode).
 */
import { fileURLToPath } from 'node:url';
import type { BlobStore } from './blob-store.js';
import { createFsBlobStore } from './fs-blob-store.js';
import { createS3BlobStore, type S3BlobStoreOptions } from './s3-blob-store.js';
import { StorageError } from './storage-error.js';

export interface BlobStoreConfig extends Omit<S3BlobStoreOptions, 'bucket' | 'prefix'> {
  /** `file:///absolute/folder` or `s3://bucket[/prefix]`. */
  url: string;
  /** fs only: flush objects to disk before they become visible (default true). */
  fsync?: boolean;
}

/** Throws `StorageError('invalid-config')` for a URL of another scheme or without a folder / bucket. */
export function createBlobStore(config: BlobStoreConfig): BlobStore {
  const { url: raw, fsync, ...s3 } = config;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new StorageError('invalid-config', 'the blob store URL must be file:///folder or s3://bucket/prefix');
  }
  if (url.username !== '' || url.password !== '') {
    throw new StorageError('invalid-config', 'the blob store URL must not contain credentials');
  }
  if (url.protocol === 'file:') {
    if (url.host !== '' || url.search !== '' || url.hash !== '') {
      throw new StorageError('invalid-config', 'a file blob store URL is file:///absolute/folder (no host, query or fragment)');
    }
    return createFsBlobStore({ root: fileURLToPath(url), ...(fsync !== undefined ? { fsync } : {}) });
  }
  if (url.protocol === 's3:') {
    const { bucket, prefix } = parseS3BlobUrl(raw);
    return createS3BlobStore({ ...s3, bucket, prefix });
  }
  throw new StorageError('invalid-config', 'the blob store URL must be file:///folder or s3://bucket/prefix');
}

/**
 * The bucket and key prefix (without leading or trailing `/`) of an `s3://bucket[/prefix]` blob
 * store URL. Parsed by hand: URL would lower-case the bucket and resolve `..` segments silently.
 * Throws `StorageError('invalid-config')`.
 */
export function parseS3BlobUrl(raw: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/?#:@]+)(\/[^?#]*)?$/.exec(raw.trim());
  if (!match) throw new StorageError('invalid-config', 'an S3 blob store URL is s3://bucket/prefix (no port, query or fragment)');
  let prefix: string;
  try {
    prefix = decodeURIComponent(match[2] ?? '');
  } catch {
    throw new StorageError('invalid-config', 'the S3 key prefix is not valid percent-encoding');
  }
  return { bucket: match[1], prefix: prefix.replace(/^\/+|\/+$/g, '') };
}
