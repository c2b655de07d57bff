import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { text } from 'node:stream/consumers';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublicAddress, type HostLookup } from './address-policy.js';
import { HopRefusedError, RedirectRefusedError, pinnedRequest } from './http-client.js';

let server: Server;
let port: number;
const hosts: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    hosts.push(req.headers.host ?? '');
    const url = req.url ?? '/';
    if (url === '/hop') res.writeHead(302, { location: `http://second.example:${port}/final` }).end();
    else if (url === '/to-private') res.writeHead(307, { location: `http://inside.example:${port}/final` }).end();
    else if (url === '/loop') res.writeHead(301, { location: '/loop' }).end();
    else if (url === '/ftp') res.writeHead(302, { location: 'ftp://files.example/b.tar' }).end();
    else if (url === '/gz') res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync('decoded'));
    else if (req.method === 'POST') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.writeHead(303, { location: '/elsewhere' }).end(`got ${n}`));
    } else res.writeHead(200).end('final');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Names resolve to the test server; `inside.example` to a private address the policy refuses. */
function lookupCounting(): { lookup: HostLookup; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    lookup: async (host) => {
      asked.push(host);
      return [{ address: host === 'inside.example' ? '10.0.0.7' : '127.0.0.1', family: 4 }];
    },
  };
}

/** Lets the test server (on loopback) through, and refuses what isPublicAddress refuses otherwise. */
const policy = (address: string): boolean => address === '127.0.0.1' || isPublicAddress(address);

describe('pinnedRequest', () => {
  it('follows redirects, resolving and checking each hop once, keeping each name as the Host header', async () => {
    const { lookup, asked } = lookupCounting();
    hosts.length = 0;
    const res = await pinnedRequest({ url: new URL(`http://first.example:${port}/hop`), method: 'GET', signal: new AbortController().signal, maxRedirects: 5, lookup, addressPolicy: policy });
    expect(res.status).toBe(200);
    expect(await text(res.body)).toBe('final');
    expect(res.url.hostname).toBe('second.example');
    expect(asked).toEqual(['first.example', 'second.example']);
    expect(hosts).toEqual([`first.example:${port}`, `second.example:${port}`]);
  });

  it('refuses a redirect to a refused address without connecting there', async () => {
    const { lookup } = lookupCounting();
    const err = await pinnedRequest({ url: new URL(`http://first.example:${port}/to-private`), method: 'GET', signal: new AbortController().signal, maxRedirects: 5, lookup, addressPolicy: policy }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HopRefusedError);
    expect((err as HopRefusedError).url.hostname).toBe('inside.example');
    expect((err as HopRefusedError).refused).toEqual({ address: '10.0.0.7', family: 4 });
  });

  it('refuses too many redirects and redirects to other schemes', async () => {
    const base = { method: 'GET' as const, signal: new AbortController().signal, maxRedirects: 3 };
    await expect(pinnedRequest({ ...base, url: new URL(`http://127.0.0.1:${port}/loop`) })).rejects.toMatchObject({ reason: 'too-many-redirects', status: 301 });
    const ftp = await pinnedRequest({ ...base, url: new URL(`http://127.0.0.1:${port}/ftp`) }).catch((e: unknown) => e);
    expect(ftp).toBeInstanceOf(RedirectRefusedError);
    expect(ftp).toMatchObject({ reason: 'unsupported-scheme' });
  });

  it('returns a redirect as the answer with maxRedirects 0 (and a POST never follows one)', async () => {
    const res = await pinnedRequest({ url: new URL(`http://127.0.0.1:${port}/post`), method: 'POST', body: Buffer.from('12345'), signal: new AbortController().signal, maxRedirects: 0 });
    expect(res.status).toBe(303);
    expect(await text(res.body)).toBe('got 5');
  });

  it('undoes a Content-Encoding when asked', async () => {
    const url = new URL(`http://127.0.0.1:${port}/gz`);
    const decoded = await pinnedRequest({ url, method: 'GET', signal: new AbortController().signal, maxRedirects: 0, decodeContent: true });
    expect(await text(decoded.body)).toBe('decoded');
    const raw = await pinnedRequest({ url, method: 'GET', signal: new AbortController().signal, maxRedirects: 0 });
    expect(Buffer.from(await raw.body.toArray().then((c: Buffer[]) => Buffer.concat(c)))).toEqual(gzipSync('decoded'));
  });

  it('refuses a private IP literal without DNS, and rejects with the signal when aborted', async () => {
    const err = await pinnedRequest({ url: new URL(`http://127.0.0.1:${port}/x`), method: 'GET', signal: new AbortController().signal, maxRedirects: 0, addressPolicy: isPublicAddress }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HopRefusedError);
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(pinnedRequest({ url: new URL(`http://slow.example/x`), method: 'GET', signal: controller.signal, maxRedirects: 0, lookup: () => new Promise(() => {}) })).rejects.toThrow('stop');
  });
});
