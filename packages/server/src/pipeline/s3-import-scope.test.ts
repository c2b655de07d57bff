import { describe, expect, it } from 'vitest';
import { orgIncomingUrl, s3ImportKey, s3ImportRefusal, s3ImportScopeOf } from './s3-import-scope.js';

describe('s3 import scope', () => {
  const scope = { bucket: 'blobs', prefix: 'inst/edge' };

  it('derives the scope from the blob store URL (cluster mode only)', () => {
    expect(s3ImportScopeOf('s3://blobs/inst/edge/')).toEqual(scope);
    expect(s3ImportScopeOf('s3://blobs')).toEqual({ bucket: 'blobs', prefix: '' });
    expect(s3ImportScopeOf('file:///var/rockit/blobs')).toBeUndefined();
    expect(orgIncomingUrl(scope, 'acme')).toBe('s3://blobs/inst/edge/incoming/acme/');
    expect(orgIncomingUrl({ bucket: 'b', prefix: '' }, 'acme')).toBe('s3://b/incoming/acme/');
  });

  it('maps URLs under the org\'s prefix to blob store keys', () => {
    expect(s3ImportKey('s3://blobs/inst/edge/incoming/acme/v1.tar', scope, 'acme')).toBe('incoming/acme/v1.tar');
    expect(s3ImportKey('s3://blobs/inst/edge/incoming/acme/ci/1.0%20final.tar', scope, 'acme')).toBe('incoming/acme/ci/1.0 final.tar');
    expect(s3ImportKey('s3://b/incoming/acme/v1.tar', { bucket: 'b', prefix: '' }, 'acme')).toBe('incoming/acme/v1.tar');
  });

  it('refuses everything else', () => {
    const refused = [
      's3://other/inst/edge/incoming/acme/v1.tar',
      's3://BLOBS/inst/edge/incoming/acme/v1.tar',
      's3://blobs/inst/edge/incoming/acme2/v1.tar', // a name sharing the prefix
      's3://blobs/inst/edge/incoming/ACME/v1.tar',
      's3://blobs/inst/edge/incoming/acme/',
      's3://blobs/inst/edge/incoming/acme',
      's3://blobs/inst/edge/incoming/other/v1.tar',
      's3://blobs/inst/edge/incoming/acme/../other/v1.tar',
      's3://blobs/inst/edge/incoming/acme/%2e%2e/other/v1.tar',
      's3://blobs/inst/edge/incoming/acme%2F..%2Fother/v1.tar',
      's3://blobs/inst/edge/incoming/acme//v1.tar',
      's3://blobs/inst/edge/incoming/acme/./v1.tar',
      's3://blobs/inst/edge/incoming/acme/%00.tar',
      's3://blobs/inst/edge/incoming/acme/a\\b.tar',
      's3://blobs/inst/edge/incoming/acme/%E0%A4%A.tar', // bad percent-encoding
      's3://blobs/inst/edge/incoming/acme/v1.tar?versionId=1',
      's3://blobs/inst/edge/incoming/acme/v1.tar#x',
      's3://user@blobs/inst/edge/incoming/acme/v1.tar',
      's3://blobs:9000/inst/edge/incoming/acme/v1.tar',
      's3://blobs/inst/edge/cdn/dxf/acme/app/release.json',
      's3://blobs/inst/edge/imports/org/t.tar',
      's3://blobs/inst/incoming/acme/v1.tar',
      's3://blobs/incoming/acme/v1.tar',
      'S3://blobs/inst/edge/incoming/acme/v1.tar',
      'https://blobs/inst/edge/incoming/acme/v1.tar',
    ];
    for (const url of refused) expect(s3ImportKey(url, scope, 'acme'), url).toBeNull();
    expect(s3ImportKey('s3://blobs/inst/edge/incoming/acme/v1.tar', undefined, 'acme')).toBeNull();
  });

  it('has one refusal message per org, naming only what the org may use', () => {
    expect(s3ImportRefusal(scope, 'acme')).toBe('an s3:// URL must name an object under s3://blobs/inst/edge/incoming/acme/');
    expect(s3ImportRefusal(undefined, 'acme')).toContain('not enabled');
  });
});
