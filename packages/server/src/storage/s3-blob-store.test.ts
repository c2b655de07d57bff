import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../test-support/s3.js';
import { createBlobStore } from './create-blob-store.js';
import { normalizeS3Endpoint, regionFromEndpoint, S3BlobStore } from './s3-blob-store.js';
import { isStorageError, StorageError } from './storage-error.js';

const SECRET = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY';

describe('S3 endpoint settings', () => {
  it('adds a scheme (http for loopback, https otherwise) and keeps bare origins', () => {
    expect(normalizeS3Endpoint('s3.us-east-1.amazonaws.com')).toBe('https://s3.us-east-1.amazonaws.com');
    expect(normalizeS3Endpoint('localhost:9000')).toBe('http://localhost:9000');
    expect(normalizeS3Endpoint('127.0.0.1:9000/')).toBe('http://127.0.0.1:9000');
    expect(normalizeS3Endpoint('http://minio.internal:9000')).toBe('http://minio.internal:9000');
    expect(normalizeS3Endpoint(' https://s3.eu-central-1.wasabisys.com ')).toBe('https://s3.eu-central-1.wasabisys.com');
  });

  it('refuses endpoints that name a bucket, carry credentials or use another scheme', () => {
    for (const bad of ['', 's3.amazonaws.com/bucket', 'https://user:pw@s3.example.com', 'ftp://s3.example.com', 'https://s3.example.com/?x=1', 'http://']) {
      expect(() => normalizeS3Endpoint(bad), bad).toThrow(StorageError);
    }
    const err = (() => {
      try {
        normalizeS3Endpoint(`https://AKIA:${SECRET}@s3.example.com`);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).not.toContain(SECRET);
  });

  it('reads the region from AWS endpoint names', () => {
    expect(regionFromEndpoint('https://s3.eu-west-1.amazonaws.com')).toBe('eu-west-1');
    expect(regionFromEndpoint('https://s3-ap-southeast-2.amazonaws.com')).toBe('ap-southeast-2');
    expect(regionFromEndpoint('http://127.0.0.1:9000')).toBeUndefined();
  });

  it('parses s3:// URLs into bucket and prefix, and validates options', () => {
    const store = createBlobStore({ url: 's3://my-bucket/a/b/', endpoint: 'localhost:9000', accessKeyId: 'k', secretAccessKey: SECRET });
    expect(store).toBeInstanceOf(S3BlobStore);
    expect(store.describe().location).toBe('s3://my-bucket/a/b @ http://localhost:9000');
    expect(store.describe().location).not.toContain(SECRET);
    expect(() => createBlobStore({ url: 's3://Bad_Bucket/x' })).toThrow(expect.objectContaining({ code: 'invalid-config' }));
    expect(() => createBlobStore({ url: 's3://bucket/../x' })).toThrow(expect.objectContaining({ code: 'invalid-config' }));
    expect(() => createBlobStore({ url: 's3://bucket/x', accessKeyId: 'only-half' })).toThrow(expect.objectContaining({ code: 'invalid-config' }));
  });
});

describe('S3 blob store failures (s3rver)', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server({ buckets: ['present'] });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const storeWith = (bucket: string, accessKeyId: string, secretAccessKey: string) =>
    createBlobStore({ url: `s3://${bucket}/p`, endpoint: server.endpoint, region: server.region, accessKeyId, secretAccessKey, forcePathStyle: true, maxAttempts: 1 });

  it('wrong credentials: every operation fails with access-denied and never shows the secret', async () => {
    const store = storeWith('present', server.wrongCredentials.accessKeyId, SECRET);
    try {
      const ops: (() => Promise<unknown>)[] = [
        () => store.put('k', Buffer.from('x')),
        () => store.get('k'),
        () => store.head('k'),
        () => store.delete('k'),
        async () => {
          for await (const item of store.list('')) void item;
        },
        () => store.deletePrefix(''),
      ];
      for (const op of ops) {
        const err = await op().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isStorageError(err, 'access-denied'), String(err)).toBe(true);
        const e = err as StorageError;
        expect(e.httpStatus).toBe(403);
        expect(e.message).not.toContain(SECRET);
        expect(JSON.stringify(e)).not.toContain(SECRET);
        expect(e.message).toMatch(/^S3 \w+ s3:\/\/present\/p\//);
      }
    } finally {
      await store.close();
    }
  });

  it('a missing bucket is not-found (named as such) for put, get and list', async () => {
    const store = storeWith('absent', server.accessKeyId, server.secretAccessKey);
    try {
      const ops: (() => Promise<unknown>)[] = [
        () => store.put('k', Buffer.from('x')),
        () => store.get('k'),
        async () => {
          for await (const item of store.list('')) void item;
        },
      ];
      for (const op of ops) {
        const err = await op().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isStorageError(err, 'not-found'), String(err)).toBe(true);
        expect((err as Error).message).toContain('bucket absent does not exist');
      }
    } finally {
      await store.close();
    }
  });
});
