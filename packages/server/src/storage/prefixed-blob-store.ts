/**
 * A view of a blob store under a key prefix: key `k` of the view is `<prefix>/k` of the inner
 * store. Used for the depot's published tree (an origin inside the installation's own store)
 * and anywhere a component should see only its part of a store.
 */
import type { Readable } from 'node:stream';
import {
  assertValidKey,
  assertValidPrefix,
  type BlobListing,
  type BlobStore,
  type BlobStoreDescription,
  type ByteRange,
  type GetResult,
  type PutOptions,
  type PutResult,
  type StoredPart,
} from './blob-store.js';
import { StorageError } from './storage-error.js';

export class PrefixedBlobStore implements BlobStore {
  private readonly prefix: string;

  /** `prefix`: a valid key (leading/trailing `/` are stripped); `close()` does not close `inner`. */
  constructor(
    private readonly inner: BlobStore,
    prefix: string,
  ) {
    const p = prefix.replace(/^\/+|\/+$/g, '');
    try {
      assertValidKey(p);
    } catch {
      throw new StorageError('invalid-config', `the key prefix ${JSON.stringify(prefix)} is not a valid relative path`);
    }
    this.prefix = `${p}/`;
  }

  private inside(key: string): string {
    assertValidKey(key);
    return this.prefix + key;
  }

  put(key: string, body: Readable | Buffer, options?: PutOptions): Promise<PutResult> {
    return this.inner.put(this.inside(key), body, options);
  }
  putFile(key: string, path: string, options?: { signal?: AbortSignal; expectedSizeBytes?: number }): Promise<{ sizeBytes: number }> {
    return this.inner.putFile(this.inside(key), path, options);
  }
  localFile(key: string): string | null {
    return this.inner.localFile(this.inside(key));
  }
  get(key: string, range?: ByteRange): Promise<GetResult> {
    return this.inner.get(this.inside(key), range);
  }
  head(key: string): Promise<{ sizeBytes: number } | null> {
    return this.inner.head(this.inside(key));
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(this.inside(key));
  }
  async *list(prefix: string): AsyncIterable<BlobListing> {
    assertValidPrefix(prefix);
    for await (const item of this.inner.list(this.prefix + prefix)) {
      yield { key: item.key.slice(this.prefix.length), sizeBytes: item.sizeBytes };
    }
  }
  deletePrefix(prefix: string): Promise<number> {
    assertValidPrefix(prefix);
    return this.inner.deletePrefix(this.prefix + prefix);
  }
  createMultipart(key: string, options?: { contentType?: string }): Promise<string> {
    return this.inner.createMultipart(this.inside(key), options);
  }
  putPart(key: string, uploadId: string, part: { partNumber: number; offset: number; body: Buffer }): Promise<StoredPart> {
    return this.inner.putPart(this.inside(key), uploadId, part);
  }
  completeMultipart(key: string, uploadId: string, parts: StoredPart[]): Promise<{ sizeBytes: number }> {
    return this.inner.completeMultipart(this.inside(key), uploadId, parts);
  }
  abortMultipart(key: string, uploadId: string): Promise<void> {
    return this.inner.abortMultipart(this.inside(key), uploadId);
  }
  async *listMultipart(): AsyncIterable<{ key: string; uploadId: string; startedMs: number }> {
    for await (const u of this.inner.listMultipart()) {
      if (u.key.startsWith(this.prefix)) yield { ...u, key: u.key.slice(this.prefix.length) };
    }
  }
  describe(): BlobStoreDescription {
    const d = this.inner.describe();
    return { ...d, location: `${d.location} [${this.prefix}]` };
  }
  async close(): Promise<void> {}
}
