/**
 * A blob store in an S3-compatible bucket, under an optional key prefix: key `a/b` is the object
 * `<prefix>/a/b`.
 *
 * Invariants:
 * - puts stream through `@aws-sdk/lib-storage`'s Upload: one PUT for small bodies, multipart
 *   otherwise, with at most `queueSize` parts in memory; a failed or aborted put aborts its
 *   multipart upload, so no partial object ever becomes visible;
 * - checksums are computed only when the operation requires them (`WHEN_REQUIRED`): recent SDKs
 *   otherwise send aws-chunked bodies with checksum trailers, which many S3-compatible stores
 *   (and the test server) do not accept; integrity is ours to check (sha256 of every put);
 * - error messages name the bucket, prefix and key, never the credentials;
 * - resumable multipart puts map one to one onto S3's multipart API; the part list given to
 *   `completeMultipart` is checked here for shape (numbering, minimum sizes) and by S3 for ETags.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  assertPartNumber,
  assertValidKey,
  assertValidPrefix,
  checkExpectations,
  checkFileSize,
  checkPartList,
  HashingStream,
  resolveRange,
  type BlobListing,
  type BlobStore,
  type BlobStoreDescription,
  type ByteRange,
  type GetResult,
  type PutOptions,
  type PutResult,
  type StoredPart,
} from './blob-store.js';
import { checkedLookup, namesRefusedHost, type AddressPolicy } from '../net/address-policy.js';
import { normalizeS3Endpoint, regionFromEndpoint } from './s3-endpoint.js';
import { mapS3Error, S3_ENDPOINT_FAILED, type S3ErrorDetail, type SdkLikeError } from './s3-errors.js';
import { StorageError } from './storage-error.js';

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing `/` (both are stripped). */
  prefix?: string;
  /**
   * The service endpoint, naming no bucket (`s3.us-east-1.amazonaws.com`, `http://127.0.0.1:9000`).
   * Without a scheme, `http` is used for loopback hosts and `https` otherwise. Absent: AWS itself.
   */
  endpoint?: string;
  /** Default: the region in an AWS endpoint name, else `us-east-1`. */
  region?: string;
  /** Both or neither; neither means the SDK's default credential chain. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** `bucket` in the path instead of the host name (most self-hosted S3-compatible stores need it). */
  forcePathStyle?: boolean;
  /** Part size of multipart puts (≥ 5 MiB; default 8 MiB; raised automatically for very large expected sizes). */
  partSizeBytes?: number;
  /** Parts uploaded (and held in memory) at once (default 4). */
  queueSize?: number;
  /** TCP connect timeout (default 10 s). */
  connectTimeoutMs?: number;
  /** Socket idle timeout (default 120 s). */
  idleTimeoutMs?: number;
  /** Attempts per request, including the first (default 3). */
  maxAttempts?: number;
  /** Keys per list page and per batch delete (1–1000, default 1000; tests use small pages). */
  pageSize?: number;
  /**
   * For endpoints that org users chose (deployments): every connection resolves the host once,
   * checks each address with this policy and connects only there; an endpoint naming a refused IP
   * literal or localhost is refused when the store is built. Absent: any address.
   */
  addressPolicy?: AddressPolicy;
  /**
   * Errors say only what the org can act on (access denied, no such bucket or object) and answer
   * every other failure — a connect error, a refused address, whatever the endpoint answered — with
   * one generic `unreachable` message, so the store is no port scanner and echoes no foreign
   * `<Code>`. The detail goes to `logError`. Default false (the installation's own store).
   */
  opaqueErrors?: boolean;
  /** With `opaqueErrors`: receives what the message leaves out, for the server's log. */
  logError?: (detail: S3ErrorDetail) => void;
}

const MIB = 1024 * 1024;
const MIN_PART_BYTES = 5 * MIB;
const DEFAULT_PART_BYTES = 8 * MIB;
/** S3 allows 10 000 parts; keep a margin for an under-estimated size. */
const MAX_PARTS_TARGET = 9000;
/** ListObjectsV2 returns and DeleteObjects takes at most 1000 keys. */
const MAX_PAGE = 1000;

export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly endpoint?: string;
  private readonly partSizeBytes: number;
  private readonly queueSize: number;
  private readonly pageSize: number;
  private readonly secrets: string[];
  private readonly opaque: boolean;
  private readonly logError: ((detail: S3ErrorDetail) => void) | undefined;

  constructor(options: S3BlobStoreOptions) {
    if (!options.bucket || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket)) {
      throw new StorageError('invalid-config', 'the S3 bucket name must be 3–63 lower-case letters, digits, dots or hyphens');
    }
    if ((options.accessKeyId === undefined) !== (options.secretAccessKey === undefined)) {
      throw new StorageError('invalid-config', 'give both the S3 access key id and the secret access key, or neither');
    }
    const prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    if (prefix !== '') {
      try {
        assertValidKey(prefix);
      } catch {
        throw new StorageError('invalid-config', `the S3 key prefix ${JSON.stringify(prefix)} is not a valid relative path`);
      }
    }
    this.bucket = options.bucket;
    this.prefix = prefix;
    this.endpoint = options.endpoint === undefined ? undefined : normalizeS3Endpoint(options.endpoint);
    this.partSizeBytes = Math.max(MIN_PART_BYTES, options.partSizeBytes ?? DEFAULT_PART_BYTES);
    this.queueSize = Math.max(1, options.queueSize ?? 4);
    this.pageSize = Math.min(MAX_PAGE, Math.max(1, options.pageSize ?? MAX_PAGE));
    this.secrets = options.secretAccessKey ? [options.secretAccessKey] : [];
    this.opaque = options.opaqueErrors ?? false;
    this.logError = options.logError;
    const policy = options.addressPolicy;
    if (policy && namesRefusedHost(new URL(this.endpoint ?? 'https://s3.amazonaws.com'), policy)) {
      this.logError?.({ op: 'connect', location: this.location(), name: 'AddressRefusedError', message: 'the endpoint names a refused address' });
      throw new StorageError('unreachable', `${this.location()}: ${S3_ENDPOINT_FAILED}`);
    }
    // Connections of a policed store resolve once, are checked, and go only to the checked addresses.
    const agent = policy ? { lookup: checkedLookup(policy) } : undefined;
    this.client = new S3Client({
      region: options.region || regionFromEndpoint(this.endpoint) || 'us-east-1',
      ...(this.endpoint ? { endpoint: this.endpoint } : {}),
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.accessKeyId !== undefined && options.secretAccessKey !== undefined
        ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } }
        : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: options.maxAttempts ?? 3,
      requestHandler: {
        connectionTimeout: options.connectTimeoutMs ?? 10_000,
        socketTimeout: options.idleTimeoutMs ?? 120_000,
        ...(agent ? { httpAgent: agent, httpsAgent: agent } : {}),
      },
    });
  }

  private fullKey(key: string): string {
    return this.prefix === '' ? key : `${this.prefix}/${key}`;
  }

  private where(key: string): string {
    return `s3://${this.bucket}/${this.fullKey(key)}`;
  }

  private mapError(err: unknown, op: string, key: string): StorageError {
    return mapS3Error(err, op, key, {
      bucket: this.bucket, where: (k) => this.where(k), location: this.location(), secrets: this.secrets, opaque: this.opaque, logError: this.logError,
    });
  }

  /** The bucket and prefix, without a key or the endpoint (messages of opaque errors). */
  private location(): string {
    return `s3://${this.bucket}/${this.prefix === '' ? '' : `${this.prefix}/`}`;
  }

  async put(key: string, body: Readable | Buffer, options?: PutOptions): Promise<PutResult> {
    assertValidKey(key);
    const hasher = new HashingStream();
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    source.once('error', (err) => hasher.destroy(err));
    source.pipe(hasher);
    let partSize = this.partSizeBytes;
    if (options?.expectedSizeBytes !== undefined) {
      partSize = Math.max(partSize, Math.ceil(options.expectedSizeBytes / MAX_PARTS_TARGET));
    }
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: this.fullKey(key),
        Body: hasher,
        ...(options?.contentType ? { ContentType: options.contentType } : {}),
      },
      partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    const onProgress = options?.onProgress;
    if (onProgress) upload.on('httpUploadProgress', (p) => p.loaded !== undefined && onProgress(p.loaded));
    const signal = options?.signal;
    const onAbort = () => {
      hasher.destroy(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      void upload.abort().catch(() => undefined);
    };
    try {
      if (signal?.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
      signal?.addEventListener('abort', onAbort, { once: true });
      await upload.done();
      const result = hasher.result();
      try {
        checkExpectations(result, options, key);
      } catch (err) {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) })).catch(() => undefined);
        throw err;
      }
      return result;
    } catch (err) {
      if (!source.destroyed) source.destroy();
      if (signal?.aborted) throw new StorageError('aborted', `S3 put ${this.where(key)}: aborted`);
      throw this.mapError(err, 'put', key);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Uploads the file (S3 has no links). A missing file is `not-found`. */
  async putFile(key: string, path: string, options?: { signal?: AbortSignal; expectedSizeBytes?: number }): Promise<{ sizeBytes: number }> {
    assertValidKey(key);
    const size = await stat(path).then((st) => st.size, () => null);
    if (size === null) throw new StorageError('not-found', `S3 putFile ${this.where(key)}: the local file to upload is missing`);
    checkFileSize(size, options?.expectedSizeBytes, key);
    const { sizeBytes } = await this.put(key, createReadStream(path, { highWaterMark: 1024 * 1024 }), { ...options, expectedSizeBytes: size });
    return { sizeBytes };
  }

  localFile(key: string): null {
    assertValidKey(key);
    return null;
  }

  async get(key: string, range?: ByteRange): Promise<GetResult> {
    assertValidKey(key);
    if (range) resolveRange(range, Number.MAX_SAFE_INTEGER, key); // shape checks only; S3 checks the size
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.fullKey(key),
          ...(range ? { Range: `bytes=${range.start}-${range.end ?? ''}` } : {}),
        }),
      );
      const body = (res.Body as Readable | undefined) ?? Readable.from([]);
      const contentRange = res.ContentRange ? /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.ContentRange) : null;
      if (contentRange) {
        const [start, end, sizeBytes] = [Number(contentRange[1]), Number(contentRange[2]), Number(contentRange[3])];
        if (start >= sizeBytes || end >= sizeBytes || end < start) {
          // Not a satisfiable answer (s3rver sends "bytes 0-0/0" for an empty object).
          body.destroy();
          throw new StorageError('invalid-range', `S3 get ${this.where(key)}: range ${range?.start ?? 0}- is outside the object (${sizeBytes} bytes)`);
        }
        return { body, start, end, sizeBytes };
      }
      const size = res.ContentLength ?? 0;
      if (range && range.start >= size) {
        body.destroy();
        throw new StorageError('invalid-range', `S3 get ${this.where(key)}: range starts past the last byte (${size} bytes)`);
      }
      if (range && (range.start !== 0 || (range.end !== undefined && range.end < size - 1))) {
        body.destroy();
        throw new StorageError('io', `S3 get ${this.where(key)}: the service ignored the Range header`);
      }
      return { body, start: 0, end: size - 1, sizeBytes: size };
    } catch (err) {
      const mapped = this.mapError(err, 'get', key);
      if (range && !['not-found', 'access-denied', 'invalid-range', 'aborted'].includes(mapped.code)) {
        // Some S3-compatible servers drop the connection instead of answering 416 (s3rver does
        // for any range of an empty object): tell an unsatisfiable range from a real failure.
        const head = await this.head(key).catch(() => null);
        if (head && range.start >= head.sizeBytes) {
          throw new StorageError('invalid-range', `S3 get ${this.where(key)}: range starts past the last byte (${head.sizeBytes} bytes)`);
        }
      }
      throw mapped;
    }
  }

  /**
   * HEAD answers carry no error body, so a missing bucket looks like a missing object here
   * (null); every other operation names the missing bucket.
   */
  async head(key: string): Promise<{ sizeBytes: number } | null> {
    assertValidKey(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
      return { sizeBytes: res.ContentLength ?? 0 };
    } catch (err) {
      const mapped = this.mapError(err, 'head', key);
      // A missing bucket is a configuration problem, not a missing object.
      if (mapped.code === 'not-found' && (err as SdkLikeError).name !== 'NoSuchBucket') return null;
      throw mapped;
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
    } catch (err) {
      const mapped = this.mapError(err, 'delete', key);
      if (mapped.code === 'not-found' && (err as SdkLikeError).name !== 'NoSuchBucket') return;
      throw mapped;
    }
  }

  async *list(prefix: string): AsyncIterable<BlobListing> {
    assertValidPrefix(prefix);
    const full = this.prefix === '' ? prefix : `${this.prefix}/${prefix}`;
    const strip = this.prefix === '' ? 0 : this.prefix.length + 1;
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: full,
            MaxKeys: this.pageSize,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (err) {
        throw this.mapError(err, 'list', prefix);
      }
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined) continue;
        yield { key: item.Key.slice(strip), sizeBytes: item.Size ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async deletePrefix(prefix: string): Promise<number> {
    assertValidPrefix(prefix);
    let count = 0;
    let batch: string[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const keys = batch;
      batch = [];
      let res;
      try {
        res = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: keys.map((k) => ({ Key: this.fullKey(k) })), Quiet: true },
          }),
        );
      } catch (err) {
        throw this.mapError(err, 'delete', prefix);
      }
      const failed = res.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0];
        throw this.mapError({ name: first.Code ?? 'DeleteFailed', $metadata: { httpStatusCode: first.Code === 'AccessDenied' ? 403 : 500 } }, 'delete', first.Key?.slice(this.prefix === '' ? 0 : this.prefix.length + 1) ?? prefix);
      }
      count += keys.length;
    };
    // Collect a batch, then delete it: S3 listings stay consistent because deleted keys sort before the next page.
    for await (const { key } of this.list(prefix)) {
      batch.push(key);
      if (batch.length >= this.pageSize) await flush();
    }
    await flush();
    return count;
  }

  async createMultipart(key: string, options?: { contentType?: string }): Promise<string> {
    assertValidKey(key);
    let uploadId: string | undefined;
    try {
      const res = await this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.fullKey(key),
          ...(options?.contentType ? { ContentType: options.contentType } : {}),
        }),
      );
      uploadId = res.UploadId;
    } catch (err) {
      throw this.mapError(err, 'createMultipart', key);
    }
    if (!uploadId) throw new StorageError('io', `S3 createMultipart ${this.where(key)}: the service returned no upload id`);
    return uploadId;
  }

  /** `offset` is not needed by S3 and is ignored; the ETag returned is S3's, quotes included. */
  async putPart(key: string, uploadId: string, part: { partNumber: number; offset: number; body: Buffer }): Promise<StoredPart> {
    assertValidKey(key);
    assertPartNumber(part.partNumber, key);
    this.assertUploadId(uploadId, 'putPart', key);
    let etag: string | undefined;
    try {
      const res = await this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: this.fullKey(key),
          UploadId: uploadId,
          PartNumber: part.partNumber,
          Body: part.body,
          ContentLength: part.body.length,
        }),
      );
      etag = res.ETag;
    } catch (err) {
      throw this.mapError(err, 'putPart', key);
    }
    if (!etag) throw new StorageError('io', `S3 putPart ${this.where(key)}: the service returned no ETag for part ${part.partNumber}`);
    return { partNumber: part.partNumber, etag, sizeBytes: part.body.length };
  }

  /**
   * The size returned is the sum of the listed sizes: S3 checks the ETags (digests of the parts'
   * contents) and the minimum part size, not `sizeBytes` itself.
   */
  async completeMultipart(key: string, uploadId: string, parts: StoredPart[]): Promise<{ sizeBytes: number }> {
    assertValidKey(key);
    const sizeBytes = checkPartList(parts, key);
    this.assertUploadId(uploadId, 'completeMultipart', key);
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.fullKey(key),
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      );
    } catch (err) {
      throw this.mapError(err, 'completeMultipart', key);
    }
    return { sizeBytes };
  }

  /** ListMultipartUploads under the store's prefix, page by page. */
  async *listMultipart(): AsyncIterable<{ key: string; uploadId: string; startedMs: number }> {
    const prefix = this.prefix === '' ? '' : `${this.prefix}/`;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket, Prefix: prefix, MaxUploads: this.pageSize,
            ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker !== undefined ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
        );
      } catch (err) {
        throw this.mapError(err, 'listMultipart', prefix);
      }
      for (const u of page.Uploads ?? []) {
        if (!u.Key || !u.UploadId || !u.Key.startsWith(prefix)) continue;
        yield { key: u.Key.slice(prefix.length), uploadId: u.UploadId, startedMs: u.Initiated?.getTime() ?? 0 };
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
      if (keyMarker === undefined && uploadIdMarker === undefined) return;
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    assertValidKey(key);
    if (typeof uploadId !== 'string' || uploadId === '') return;
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.fullKey(key), UploadId: uploadId }));
    } catch (err) {
      const mapped = this.mapError(err, 'abortMultipart', key);
      if (mapped.code === 'not-found' && (err as SdkLikeError).name !== 'NoSuchBucket') return;
      throw mapped;
    }
  }

  /** An empty or non-string upload id names no upload: `not-found`, as S3 would answer. */
  private assertUploadId(uploadId: string, op: string, key: string): void {
    if (typeof uploadId !== 'string' || uploadId === '') {
      throw new StorageError('not-found', `S3 ${op} ${this.where(key)}: no such multipart upload (empty upload id)`);
    }
  }

  describe(): BlobStoreDescription {
    const at = this.endpoint ?? 'AWS';
    return {
      kind: 's3',
      location: `s3://${this.bucket}${this.prefix === '' ? '' : `/${this.prefix}`} @ ${at}`,
      capabilities: { multipartUpload: true, keyMayPrefixOtherKeys: true },
    };
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

export function createS3BlobStore(options: S3BlobStoreOptions): S3BlobStore {
  return new S3BlobStore(options);
}
