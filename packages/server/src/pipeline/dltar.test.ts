import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { HostLookup } from '../net/address-policy.js';
import { FsBlobStore } from '../storage/fs-blob-store.js';
import { isPublicAddress, obtainTar } from './dltar.js';
import { s3ImportKey } from './s3-import-scope.js';
import { DownloadExitCode, StepError } from './errors.js';
import {
  gzip,
  makeTar,
  makeTempDir,
  pseudoRandomBytes,
  sha256Hex,
  startHttpServer,
  unusedPort,
  type TestHttpServer,
} from './test-support/fixtures.js';

const MAX = 64 * 1024 * 1024;

async function expectStepError(p: Promise<unknown>): Promise<StepError> {
  const err = await p.then(
    () => {
      throw new Error('expected the step to fail');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StepError);
  return err as StepError;
}

/** Listens on `host` (a loopback address other than 127.0.0.1 may not exist: then null). */
async function listenOn(server: Server, host: string): Promise<number | null> {
  return new Promise((resolve) => {
    server.once('error', () => resolve(null));
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port));
  });
}

describe('obtainTar', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let store: FsBlobStore;
  let server: TestHttpServer;
  /** Path and Host header of every request the server received. */
  const received: { url: string; host: string | undefined }[] = [];
  let tar: Buffer;
  let tgz: Buffer;

  beforeAll(async () => {
    tmp = await makeTempDir('dltar');
    store = new FsBlobStore({ root: join(tmp.dir, 'blobs'), fsync: false });
    tar = await makeTar([
      { name: 'game/', type: 'directory' },
      { name: 'game/bin/run', content: pseudoRandomBytes(70_000, 1), mode: 0o755 },
      { name: 'game/data.pak', content: pseudoRandomBytes(300_000, 2) },
    ]);
    tgz = gzip(tar);
    server = await startHttpServer((req, res) => {
      const url = req.url ?? '/';
      received.push({ url, host: req.headers.host });
      if (url.startsWith('/build.tar')) {
        res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': tar.length });
        res.end(tar);
      } else if (url === '/build.tgz') {
        // No Content-Length: chunked transfer.
        res.writeHead(200, { 'content-type': 'application/gzip' });
        res.write(tgz.subarray(0, 1000));
        res.end(tgz.subarray(1000));
      } else if (url === '/encoded.tar') {
        const encoded = gzip(tar);
        res.writeHead(200, { 'content-type': 'application/x-tar', 'content-encoding': 'gzip', 'content-length': encoded.length });
        res.end(encoded);
      } else if (url === '/page.html') {
        const html = Buffer.from('<!DOCTYPE html><html><body>login required</body></html>'.padEnd(2000, ' '));
        res.writeHead(200, { 'content-type': 'text/html', 'content-length': html.length });
        res.end(html);
      } else if (url === '/cut.tar') {
        res.writeHead(200, { 'content-length': tar.length });
        res.write(tar.subarray(0, 100_000), () => res.socket?.destroy());
      } else if (url === '/redirect-ok') {
        res.writeHead(302, { location: '/build.tar' });
        res.end();
      } else if (url === '/redirect-private') {
        res.writeHead(302, { location: 'http://[::1]:9/build.tar' });
        res.end();
      } else if (url === '/stall.tar') {
        res.writeHead(200, { 'content-length': tar.length });
        res.write(tar.subarray(0, 4096));
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      }
    });
  });

  afterAll(async () => {
    await server.close();
    await tmp.cleanup();
  });

  it('streams a plain tar into the store and verifies size and sha256', async () => {
    const progress: number[] = [];
    const got = await obtainTar({
      url: `${server.baseUrl}/build.tar?X-Amz-Signature=secret`,
      sizeBytes: tar.length,
      sha256: sha256Hex(tar).toUpperCase(),
      blobStore: store,
      destKey: 'uploads/acme/demo/1.tar',
      maxBytes: MAX,
      onProgress: (p) => progress.push(p.fraction ?? -1),
    });
    expect(got).toEqual({ tarKey: 'uploads/acme/demo/1.tar', sizeBytes: tar.length, sha256: sha256Hex(tar), compression: 'none' });
    const stored = await store.get('uploads/acme/demo/1.tar');
    const chunks: Buffer[] = [];
    for await (const c of stored.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(tar)).toBe(true);
    expect(progress.at(-1)).toBe(1);
  });

  it('accepts a gzip tar sent without Content-Length', async () => {
    const got = await obtainTar({ url: `${server.baseUrl}/build.tgz`, blobStore: store, destKey: 'x/gz.tar', maxBytes: MAX });
    expect(got.compression).toBe('gzip');
    expect(got.sizeBytes).toBe(tgz.length);
    expect(got.sha256).toBe(sha256Hex(tgz));
  });

  it('undoes a Content-Encoding (the stored tar is the decoded body)', async () => {
    const got = await obtainTar({ url: `${server.baseUrl}/encoded.tar`, sizeBytes: tar.length, blobStore: store, destKey: 'x/enc.tar', maxBytes: MAX });
    expect(got).toMatchObject({ sizeBytes: tar.length, sha256: sha256Hex(tar), compression: 'none' });
  });

  it('reports an HTTP error with httpStatus and exit code 22, and stores nothing', async () => {
    const err = await expectStepError(
      obtainTar({ url: `${server.baseUrl}/missing.tar`, blobStore: store, destKey: 'x/404.tar', maxBytes: MAX }),
    );
    expect(err.toTaskError()).toMatchObject({ code: 'download-failed', httpStatus: 404, exitCode: 22, retryable: false });
    expect(await store.head('x/404.tar')).toBeNull();
  });

  it('reports a refused connection with exit code 7', async () => {
    const port = await unusedPort();
    const err = await expectStepError(
      obtainTar({ url: `http://127.0.0.1:${port}/b.tar`, blobStore: store, destKey: 'x/refused.tar', maxBytes: MAX }),
    );
    expect(err.code).toBe('download-failed');
    expect(err.exitCode).toBe(DownloadExitCode.CouldNotConnect);
    expect(err.httpStatus).toBeUndefined();
    expect(err.retryable).toBe(true);
  });

  it('refuses an unsupported scheme with exit code 1', async () => {
    const err = await expectStepError(obtainTar({ url: 'ftp://example.com/b.tar', blobStore: store, destKey: 'x/ftp.tar', maxBytes: MAX }));
    expect(err.exitCode).toBe(DownloadExitCode.UnsupportedProtocol);
  });

  it('reports a size mismatch announced by Content-Length before reading the body', async () => {
    const err = await expectStepError(
      obtainTar({ url: `${server.baseUrl}/build.tar`, sizeBytes: tar.length + 1, blobStore: store, destKey: 'x/size.tar', maxBytes: MAX }),
    );
    expect(err.toTaskError()).toMatchObject({ code: 'size-mismatch', sizeBytesActual: tar.length, sizeBytesExpected: tar.length + 1 });
    expect(await store.head('x/size.tar')).toBeNull();
  });

  it('reports a size mismatch of a body without Content-Length while streaming', async () => {
    const err = await expectStepError(
      obtainTar({ url: `${server.baseUrl}/build.tgz`, sizeBytes: 1500, blobStore: store, destKey: 'x/size2.tar', maxBytes: MAX }),
    );
    expect(err.code).toBe('size-mismatch');
    expect(err.sizeBytesExpected).toBe(1500);
    expect(err.sizeBytesActual).toBeGreaterThan(1500);
    expect(await store.head('x/size2.tar')).toBeNull();
  });

  it('reports a sha256 mismatch with both digests and deletes the object', async () => {
    const wrong = 'ab'.repeat(32);
    const err = await expectStepError(
      obtainTar({ url: `${server.baseUrl}/build.tar`, sha256: wrong, blobStore: store, destKey: 'x/sha.tar', maxBytes: MAX }),
    );
    expect(err.toTaskError()).toMatchObject({ code: 'sha256-mismatch', sha256Actual: sha256Hex(tar), sha256Expected: wrong });
    expect(await store.head('x/sha.tar')).toBeNull();
  });

  it('refuses something that is not a tar with fileReadFailed', async () => {
    const err = await expectStepError(
      obtainTar({ url: `${server.baseUrl}/page.html`, blobStore: store, destKey: 'x/html.tar', maxBytes: MAX }),
    );
    expect(err.toTaskError()).toMatchObject({
      code: 'not-a-tar',
      fileReadFailed: { filename: 'page.html', typeExpected: 'tar (plain, gzip or zstd)', typeDetected: 'html' },
    });
    expect(await store.head('x/html.tar')).toBeNull();
  });

  it('reports a body cut off before its Content-Length with exit code 18', async () => {
    const err = await expectStepError(obtainTar({ url: `${server.baseUrl}/cut.tar`, blobStore: store, destKey: 'x/cut.tar', maxBytes: MAX }));
    expect(err.code).toBe('download-failed');
    expect(err.exitCode).toBe(DownloadExitCode.PartialFile);
    expect(err.sizeBytesExpected).toBe(tar.length);
    expect(err.sizeBytesActual).toBeLessThan(tar.length);
    expect(await store.head('x/cut.tar')).toBeNull();
  });

  it('reports a stalled body with exit code 28', async () => {
    const err = await expectStepError(
      obtainTar({ url: `${server.baseUrl}/stall.tar`, blobStore: store, destKey: 'x/stall.tar', maxBytes: MAX, idleTimeoutMs: 300 }),
    );
    expect(err.exitCode).toBe(DownloadExitCode.Timeout);
    expect(await store.head('x/stall.tar')).toBeNull();
  });

  it('refuses a body over maxBytes with exit code 63', async () => {
    const err = await expectStepError(obtainTar({ url: `${server.baseUrl}/build.tgz`, blobStore: store, destKey: 'x/big.tar', maxBytes: 1024 }));
    expect(err.code).toBe('too-large');
    expect(err.exitCode).toBe(DownloadExitCode.FileSizeExceeded);
    expect(await store.head('x/big.tar')).toBeNull();
  });

  it('stops with canceled when the signal fires', async () => {
    const controller = new AbortController();
    const p = obtainTar({ url: `${server.baseUrl}/stall.tar`, blobStore: store, destKey: 'x/abort.tar', maxBytes: MAX, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutting down')), 50);
    const err = await expectStepError(p);
    expect(err.code).toBe('canceled');
    expect(await store.head('x/abort.tar')).toBeNull();
  });

  it('never shows credentials or query strings in messages', async () => {
    const err = await expectStepError(
      obtainTar({ url: `http://user:pw@127.0.0.1:1/b.tar?sig=topsecret`, blobStore: store, destKey: 'x/s.tar', maxBytes: MAX }),
    );
    expect(err.message).not.toMatch(/topsecret|pw@|user:/);
  });

  describe('addressPolicy (SSRF guard)', () => {
    const onlyThisServer = (address: string): boolean => address === '127.0.0.1';

    it('refuses a URL whose host resolves to a refused address, without connecting', async () => {
      const err = await expectStepError(
        obtainTar({ url: `${server.baseUrl}/build.tar`, blobStore: store, destKey: 'x/ssrf.tar', maxBytes: MAX, addressPolicy: isPublicAddress }),
      );
      expect(err.toTaskError()).toMatchObject({ code: 'download-failed', exitCode: DownloadExitCode.CouldNotConnect, retryable: false });
      expect(await store.head('x/ssrf.tar')).toBeNull();
    });

    it('follows redirects, checking every hop', async () => {
      const ok = await obtainTar({ url: `${server.baseUrl}/redirect-ok`, blobStore: store, destKey: 'x/r.tar', maxBytes: MAX, addressPolicy: onlyThisServer });
      expect(ok.sha256).toBe(sha256Hex(tar));
      const err = await expectStepError(
        obtainTar({ url: `${server.baseUrl}/redirect-private`, blobStore: store, destKey: 'x/r2.tar', maxBytes: MAX, addressPolicy: onlyThisServer }),
      );
      expect(err.message).toContain('not allowed');
      expect(err.message).toContain('[::1]');
    });

    describe('names resolved once, connections pinned to the checked addresses (DNS rebinding)', () => {
      const port = (): string => new URL(server.baseUrl).port;
      const asked: string[] = [];
      /** `builds.example` is a public-looking name whose DNS answer is the loopback address. */
      const lookup: HostLookup = async (host) => {
        asked.push(host);
        if (host === 'builds.example') return [{ address: '127.0.0.1', family: 4 }];
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      };

      it('refuses a name that resolves to a refused address, and the server receives no request', async () => {
        asked.length = 0;
        const before = received.length;
        const err = await expectStepError(
          obtainTar({ url: `http://builds.example:${port()}/build.tar`, blobStore: store, destKey: 'x/rebind.tar', maxBytes: MAX, addressPolicy: isPublicAddress, lookup }),
        );
        expect(err.toTaskError()).toMatchObject({ code: 'download-failed', exitCode: DownloadExitCode.CouldNotConnect, retryable: false });
        expect(err.message).toBe(`http://builds.example:${port()}/build.tar: downloads from this address are not allowed`);
        expect(received.length).toBe(before);
        expect(asked).toEqual(['builds.example']);
        expect(await store.head('x/rebind.tar')).toBeNull();
      });

      it('refuses such a name at a redirect hop from an allowed host', async (ctx) => {
        const redirector = createServer((req, res) => {
          res.writeHead(302, { location: `http://builds.example:${port()}/build.tar` }).end();
        });
        const redirectorPort = await listenOn(redirector, '127.0.0.2');
        if (redirectorPort === null) ctx.skip('127.0.0.2 is not a loopback address here');
        try {
          asked.length = 0;
          const before = received.length;
          const onlyTheRedirector = (address: string): boolean => address === '127.0.0.2';
          const err = await expectStepError(
            obtainTar({ url: `http://127.0.0.2:${redirectorPort}/to-builds`, blobStore: store, destKey: 'x/rebind2.tar', maxBytes: MAX, addressPolicy: onlyTheRedirector, lookup }),
          );
          expect(err.toTaskError()).toMatchObject({ code: 'download-failed', exitCode: DownloadExitCode.CouldNotConnect, retryable: false });
          expect(err.message).toBe(`http://builds.example:${port()}/build.tar: downloads from this address are not allowed`);
          expect(asked).toEqual(['builds.example']);
          expect(received.length).toBe(before);
        } finally {
          redirector.closeAllConnections();
          await new Promise((resolve) => redirector.close(resolve));
        }
      });

      it('without a policy, downloads through the one lookup, keeping the name as the Host header', async () => {
        asked.length = 0;
        const before = received.length;
        const got = await obtainTar({ url: `http://builds.example:${port()}/build.tar`, blobStore: store, destKey: 'x/named.tar', maxBytes: MAX, lookup });
        expect(got.sha256).toBe(sha256Hex(tar));
        expect(asked).toEqual(['builds.example']);
        expect(received.slice(before)).toEqual([{ url: '/build.tar', host: `builds.example:${port()}` }]);
      });

      it('stops with canceled while the host is still being resolved', async () => {
        const controller = new AbortController();
        const p = obtainTar({ url: 'http://slow.example/b.tar', blobStore: store, destKey: 'x/slow.tar', maxBytes: MAX, signal: controller.signal, lookup: () => new Promise(() => {}) });
        controller.abort(new Error('shutting down'));
        expect((await expectStepError(p)).code).toBe('canceled');
      });

      it('a name that does not resolve is exit code 6', async () => {
        const err = await expectStepError(
          obtainTar({ url: `http://nowhere.example/b.tar`, blobStore: store, destKey: 'x/nowhere.tar', maxBytes: MAX, addressPolicy: isPublicAddress, lookup }),
        );
        expect(err.toTaskError()).toMatchObject({ code: 'download-failed', exitCode: DownloadExitCode.CouldNotResolveHost, retryable: true });
      });
    });

    it('classifies addresses', () => {
      for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:10.0.0.1', '::ffff:7f00:1']) {
        expect(isPublicAddress(a), a).toBe(false);
      }
      for (const a of ['8.8.8.8', '172.32.0.1', '100.128.0.1', '2001:4860:4860::8888', '::ffff:8.8.8.8']) {
        expect(isPublicAddress(a), a).toBe(true);
      }
    });
  });

  it('refuses URLs with credentials without contacting anyone', async () => {
    const err = await expectStepError(obtainTar({ url: `http://user:pw@127.0.0.1:1/b.tar`, blobStore: store, destKey: 'x/cred.tar', maxBytes: MAX }));
    expect(err.exitCode).toBe(DownloadExitCode.UrlMalformed);
  });

  it('reads s3:// URLs only inside the org\'s import prefix, and says nothing about objects outside it', async () => {
    const scope = { bucket: 'blobs', prefix: 'inst' };
    const s3Source = { keyOf: (url: string) => s3ImportKey(url, scope, 'acme'), store };
    await store.put('incoming/acme/builds/v1.tar', tar);
    await store.put('incoming/other/builds/v1.tar', tar);
    const got = await obtainTar({ url: 's3://blobs/inst/incoming/acme/builds/v1.tar', blobStore: store, destKey: 'x/s3.tar', maxBytes: MAX, s3Source });
    expect(got.sha256).toBe(sha256Hex(tar));
    const missing = await expectStepError(
      obtainTar({ url: 's3://blobs/inst/incoming/acme/builds/none.tar', blobStore: store, destKey: 'x/s3none.tar', maxBytes: MAX, s3Source }),
    );
    expect(missing.toTaskError()).toMatchObject({ code: 'download-failed', httpStatus: 404, exitCode: 22 });
    // Re-checked here, whatever the POST let through: another org's build and another bucket are never read.
    const refused = new Set<string>();
    for (const url of ['s3://blobs/inst/incoming/other/builds/v1.tar', 's3://secrets/x.tar', 's3://blobs/inst/incoming/acme/../other/builds/v1.tar']) {
      const err = await expectStepError(obtainTar({ url, blobStore: store, destKey: 'x/s3refused.tar', maxBytes: MAX, s3Source }));
      expect(err.toTaskError()).toMatchObject({ code: 'download-failed', exitCode: DownloadExitCode.UnsupportedProtocol });
      expect(err.toTaskError()).not.toHaveProperty('httpStatus');
      refused.add(err.message.replace(/^.*?: /, ''));
    }
    expect([...refused]).toEqual(["not inside the organization's import prefix"]);
    expect(await store.head('x/s3refused.tar')).toBeNull();
    const off = await expectStepError(obtainTar({ url: 's3://blobs/inst/incoming/acme/builds/v1.tar', blobStore: store, destKey: 'x/off.tar', maxBytes: MAX }));
    expect(off.message).toContain('not enabled');
  });

  describe('uploads (no url)', () => {
    it('verifies the uploaded object in place', async () => {
      await store.put('uploads/u1.tar', tar);
      const got = await obtainTar({ uploadKey: 'uploads/u1.tar', sizeBytes: tar.length, sha256: sha256Hex(tar), blobStore: store, maxBytes: MAX });
      expect(got).toEqual({ tarKey: 'uploads/u1.tar', sizeBytes: tar.length, sha256: sha256Hex(tar), compression: 'none' });
      expect(await store.head('uploads/u1.tar')).toEqual({ sizeBytes: tar.length });
    });

    it('reports a missing upload', async () => {
      const err = await expectStepError(obtainTar({ uploadKey: 'uploads/none.tar', blobStore: store, maxBytes: MAX }));
      expect(err.code).toBe('upload-missing');
    });

    it('refuses and removes an upload of the wrong size', async () => {
      await store.put('uploads/u2.tar', tar);
      const err = await expectStepError(obtainTar({ uploadKey: 'uploads/u2.tar', sizeBytes: 10, blobStore: store, maxBytes: MAX }));
      expect(err.toTaskError()).toMatchObject({ code: 'size-mismatch', sizeBytesActual: tar.length, sizeBytesExpected: 10 });
      expect(await store.head('uploads/u2.tar')).toBeNull();
    });

    it('refuses and removes an upload that is not a tar', async () => {
      await store.put('uploads/u3.bin', pseudoRandomBytes(5000, 9));
      const err = await expectStepError(obtainTar({ uploadKey: 'uploads/u3.bin', blobStore: store, maxBytes: MAX }));
      expect(err.code).toBe('not-a-tar');
      expect(err.fileReadFailed?.filename).toBe('u3.bin');
      expect(await store.head('uploads/u3.bin')).toBeNull();
    });
  });
});
