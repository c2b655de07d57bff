import { afterEach, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { ApiError } from './client.js';
import { uploadStream } from './upload.js';
import { fail, ok, startStandIn, type Handler, type StandIn } from './test-support/stand-in-server.js';

let standIn: StandIn | null = null;
afterEach(async () => {
  await standIn?.close();
  standIn = null;
});
async function serve(handler: Handler): Promise<StandIn> {
  standIn = await startStandIn(handler);
  return standIn;
}

const chunks = (...sizes: number[]) => Readable.from(sizes.map((n, i) => Buffer.alloc(n, i + 1)));

describe('uploadStream', () => {
  it('sends exactly Content-Length bytes, reports progress and returns the envelope', async () => {
    const s = await serve(() => ok({ received: true }));
    const seen: number[] = [];
    const res = await uploadStream({ url: new URL(`${s.url}/up?x=1`), method: 'PUT', body: chunks(1000, 24), sizeBytes: 1024, headers: { 'x-extra': 'y' }, onProgress: (n) => seen.push(n) });
    expect(res).toEqual({ status: 200, envelope: { status: 'success', received: true } });
    expect(seen).toEqual([1000, 1024]);
    const req = s.requests[0];
    expect(req).toMatchObject({ method: 'PUT', path: '/up' });
    expect(req.headers).toMatchObject({ 'content-length': '1024', 'content-type': 'application/x-tar', 'x-extra': 'y' });
    expect(req.body.equals(Buffer.concat([Buffer.alloc(1000, 1), Buffer.alloc(24, 2)]))).toBe(true);
  });

  it('fails, rather than hanging or over-sending, when the body disagrees with its announced size', async () => {
    const s = await serve(() => ok({}));
    await expect(uploadStream({ url: new URL(s.url), method: 'PUT', body: chunks(100), sizeBytes: 200 })).rejects.toThrow(/ended after 100 of the 200 bytes/);
    await expect(uploadStream({ url: new URL(s.url), method: 'PUT', body: chunks(100, 150), sizeBytes: 200 })).rejects.toThrow(/longer than the 200 bytes/);
  });

  it('reports a failure to read the build as that failure', async () => {
    const s = await serve(() => ok({}));
    const body = new Readable({
      read() {
        this.destroy(new Error('disk on fire'));
      },
    });
    await expect(uploadStream({ url: new URL(s.url), method: 'PUT', body, sizeBytes: 10 })).rejects.toThrow('disk on fire');
  });

  it('maps an error answer to ApiError', async () => {
    const s = await serve(() => fail(401, 'token-expired', 'upload URL expired'));
    const err = await uploadStream({ url: new URL(s.url), method: 'PUT', body: chunks(10), sizeBytes: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 401, error: 'token-expired' });
  });
});
