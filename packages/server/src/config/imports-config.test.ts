import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('config: blob store and imports', () => {
  it('defaults to a blob folder in the data folder, 24 h upload expiry and grace period', () => {
    const c = loadConfig({ data: '/tmp/rockit-x' }, {});
    expect(c.blob.url).toBe(pathToFileURL(path.join('/tmp/rockit-x', 'blobs')).href);
    expect(c.imports).toMatchObject({ uploadExpirySeconds: 86400, gracePeriodSeconds: 86400 });
    expect(c.allowPrivateAddresses).toBe(false);
    expect(c.blob.s3ForcePathStyle).toBe(false);
  });

  it('reads S3 settings and limits, and refuses another blob URL scheme', () => {
    const c = loadConfig({ data: '/tmp/rockit-x' }, {
      ROCKIT_BLOB_URL: 's3://bucket/prefix', ROCKIT_S3_ENDPOINT: 'http://127.0.0.1:9000', ROCKIT_S3_ACCESS_KEY_ID: 'id',
      ROCKIT_S3_SECRET_ACCESS_KEY: 'secret', ROCKIT_S3_FORCE_PATH_STYLE: 'true', ROCKIT_MAX_UPLOAD_BYTES: '5000', ROCKIT_GRACE_PERIOD_SECONDS: '0',
    });
    expect(c.blob).toMatchObject({ url: 's3://bucket/prefix', s3Endpoint: 'http://127.0.0.1:9000', s3AccessKeyId: 'id', s3ForcePathStyle: true });
    expect(c.imports).toMatchObject({ maxUploadBytes: 5000, gracePeriodSeconds: 0 });
    expect(() => loadConfig({ data: '/tmp/rockit-x' }, { ROCKIT_BLOB_URL: 'ftp://x/y' })).toThrow(ConfigError);
    expect(() => loadConfig({ data: '/tmp/rockit-x' }, { ROCKIT_UPLOAD_EXPIRY_SECONDS: '5' })).toThrow(ConfigError);
  });

  it('allows private addresses with ROCKIT_ALLOW_PRIVATE_ADDRESSES, or its deprecated alias ROCKIT_IMPORT_ALLOW_PRIVATE_URLS', () => {
    const allow = (env: Record<string, string>) => loadConfig({ data: '/tmp/rockit-x' }, env).allowPrivateAddresses;
    expect(allow({ ROCKIT_ALLOW_PRIVATE_ADDRESSES: 'true' })).toBe(true);
    expect(allow({ ROCKIT_IMPORT_ALLOW_PRIVATE_URLS: 'true' })).toBe(true);
    // The new name wins over the alias.
    expect(allow({ ROCKIT_ALLOW_PRIVATE_ADDRESSES: 'false', ROCKIT_IMPORT_ALLOW_PRIVATE_URLS: 'true' })).toBe(false);
    expect(() => allow({ ROCKIT_ALLOW_PRIVATE_ADDRESSES: 'maybe' })).toThrow(ConfigError);
    expect(() => allow({ ROCKIT_IMPORT_ALLOW_PRIVATE_URLS: 'maybe' })).toThrow(ConfigError);
  });

  it('upload idle and stall times: 60 s and 10 s by default, whole seconds from 1 to 3600', () => {
    expect(loadConfig({ data: '/tmp/rockit-x' }, {}).imports).toMatchObject({ uploadIdleSeconds: 60, uploadStallSeconds: 10 });
    const c = loadConfig({ data: '/tmp/rockit-x' }, { ROCKIT_UPLOAD_IDLE_SECONDS: '5', ROCKIT_UPLOAD_STALL_SECONDS: '2' });
    expect(c.imports).toMatchObject({ uploadIdleSeconds: 5, uploadStallSeconds: 2 });
    for (const bad of ['0', '3601', '1.5', '-1', 'x', '99999999999999999999']) {
      expect(() => loadConfig({ data: '/tmp/rockit-x' }, { ROCKIT_UPLOAD_IDLE_SECONDS: bad }), bad).toThrow(ConfigError);
      expect(() => loadConfig({ data: '/tmp/rockit-x' }, { ROCKIT_UPLOAD_STALL_SECONDS: bad }), bad).toThrow(ConfigError);
    }
  });
});
