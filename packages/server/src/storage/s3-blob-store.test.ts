import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../test-support/s3.js';
import { createBlobStore } from './create-blob-store.js';
import { isPublicAddress } from '../net/address-policy.js';
import { S3BlobStore, type S3BlobStoreOptions } from './s3-blob-store.js';
import { normalizeS3Endpoint, regionFromEndpoint } from './s3-endpoint.js';
import { S3_ENDPOINT_FAILED, type S3ErrorDetail } from './s3-errors.js';
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

describe('S3 blob store for endpoints that org users choose (addressPolicy, opaqueErrors)', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server({ buckets: ['present'] });
  });
  afterAll(async () => {
    await server?.stop();
  });
  const port = () => new URL(server.endpoint).port;
  const onlyPublic = isPublicAddress;
  const storeAt = (endpoint: string, extra: Partial<S3BlobStoreOptions> = {}) =>
    new S3BlobStore({
      bucket: 'present', prefix: 'p', endpoint, region: server.region, accessKeyId: server.accessKeyId, secretAccessKey: SECRET,
      forcePathStyle: true, maxAttempts: 1, opaqueErrors: true, ...extra,
    });
  const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e as StorageError);

  it('refuses an endpoint naming a refused IP literal when built, and a name resolving to one when connecting', async () => {
    const logged: S3ErrorDetail[] = [];
    expect(() => storeAt(server.endpoint, { addressPolicy: onlyPublic })).toThrow(expect.objectContaining({ code: 'unreachable' }));
    expect(() => storeAt('http://169.254.169.254', { addressPolicy: onlyPublic })).toThrow(expect.objectContaining({ code: 'unreachable' }));
    expect(() => storeAt(`http://localhost:${port()}`, { addressPolicy: onlyPublic })).toThrow(expect.objectContaining({ code: 'unreachable' }));
    // This machine's name resolves to a loopback address (/etc/hosts): refused when connecting.
    const store = storeAt(`http://${hostname()}:${port()}`, { addressPolicy: onlyPublic, logError: (d) => logged.push(d) });
    try {
      const err = await failure(store.put('k', Buffer.from('x')));
      expect(err).toMatchObject({ code: 'unreachable', message: `s3://present/p/: ${S3_ENDPOINT_FAILED}` });
      expect(logged[0]).toMatchObject({ op: 'put' });
      expect(JSON.stringify(logged)).toMatch(/private address|AddressRefused/);
    } finally {
      await store.close();
    }
    expect(server.requests()).toEqual([]);
    // The same store without the policy reaches the server: the refusal was the policy's.
    const allowed = storeAt(server.endpoint);
    try {
      await allowed.put('k', Buffer.from('x'));
      expect((await allowed.head('k'))?.sizeBytes).toBe(1);
    } finally {
      await allowed.close();
    }
  });

  it('pins connections to the checked addresses (the policy sees every connection\'s addresses)', async () => {
    const seen: string[] = [];
    const store = storeAt(`http://${hostname()}:${port()}`, { addressPolicy: (address) => (seen.push(address), !isPublicAddress(address)) });
    try {
      await store.put('pinned', Buffer.from('abc'));
      expect((await store.head('pinned'))?.sizeBytes).toBe(3);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((a) => !isPublicAddress(a))).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('answers connection failures and foreign error codes with one message, and keeps access denied (without the code)', async () => {
    const logged: S3ErrorDetail[] = [];
    const closed = storeAt('http://127.0.0.1:9', { logError: (d) => logged.push(d) });
    const noHost = storeAt('http://no-such-host.invalid', { logError: (d) => logged.push(d) });
    const wrong = storeAt(server.endpoint, { accessKeyId: server.wrongCredentials.accessKeyId });
    const noBucket = new S3BlobStore({
      bucket: 'absent', endpoint: server.endpoint, region: server.region, accessKeyId: server.accessKeyId, secretAccessKey: SECRET, forcePathStyle: true, maxAttempts: 1, opaqueErrors: true,
    });
    try {
      const a = await failure(closed.put('k', Buffer.from('x')));
      const b = await failure(noHost.put('k', Buffer.from('x')));
      expect(a).toMatchObject({ code: 'unreachable' });
      expect(b.message).toBe(a.message);
      expect(a.message).not.toMatch(/ECONNREFUSED|ENOTFOUND|:9\b|127\.0\.0\.1/);
      expect(JSON.stringify(logged)).toContain('ECONNREFUSED');
      const denied = await failure(wrong.put('k', Buffer.from('x')));
      expect(denied).toMatchObject({ code: 'access-denied' });
      expect(denied.message).not.toContain('InvalidAccessKeyId');
      expect(denied.message).not.toContain(SECRET);
      expect(await failure(noBucket.put('k', Buffer.from('x')))).toMatchObject({ code: 'not-found' });
    } finally {
      await Promise.all([closed.close(), noHost.close(), wrong.close(), noBucket.close()]);
    }
  });
});
