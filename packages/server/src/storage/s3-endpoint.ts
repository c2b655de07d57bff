// S3 endpoints as users write them: normalised to a bare http(s) origin, and the AWS region they name.
import { StorageError } from './storage-error.js';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1', '0.0.0.0']);

/**
 * Turns an endpoint as users write it into a URL origin: adds the scheme when missing (http for
 * loopback hosts, https otherwise) and refuses anything that is not a bare http(s) origin — a
 * path (which would name a bucket), credentials, a query or a fragment.
 */
export function normalizeS3Endpoint(endpoint: string): string {
  const trimmed = endpoint.trim();
  if (trimmed === '') throw new StorageError('invalid-config', 'the S3 endpoint is empty');
  let withScheme = trimmed;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    const host = trimmed.split('/')[0].replace(/:\d+$/, '').toLowerCase();
    withScheme = `${LOOPBACK_HOSTS.has(host) || host.startsWith('127.') ? 'http' : 'https'}://${trimmed}`;
  }
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new StorageError('invalid-config', 'the S3 endpoint is not a valid host name or URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new StorageError('invalid-config', 'the S3 endpoint must use http or https');
  }
  if (url.username !== '' || url.password !== '') {
    throw new StorageError('invalid-config', 'the S3 endpoint must not contain credentials');
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new StorageError('invalid-config', 'the S3 endpoint must name no bucket or path (e.g. s3.us-east-1.amazonaws.com)');
  }
  return url.origin;
}

/** The region in an AWS endpoint host (`s3.eu-west-1.amazonaws.com`, `s3-eu-west-1.amazonaws.com`). */
export function regionFromEndpoint(endpoint: string | undefined): string | undefined {
  if (!endpoint) return undefined;
  const match = /(?:^|\.)s3[.-]([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$/.exec(new URL(endpoint).hostname);
  return match?.[1];
}
