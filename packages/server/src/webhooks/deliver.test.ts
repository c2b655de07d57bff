import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublicAddress, type HostLookup } from '../net/address-policy.js';
import { deliver } from './deliver.js';

interface Received {
  method?: string;
  url?: string;
  headers: IncomingMessage['headers'];
  body: string;
}

describe('deliver', () => {
  let server: Server;
  let base: string;
  const received: Received[] = [];
  const pending: ServerResponse[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        received.push({ method: req.method, url: req.url, headers: req.headers, body });
        const path = (req.url ?? '').split('?')[0];
        if (path === '/ok') res.writeHead(204).end();
        else if (path === '/fail') res.writeHead(500, { 'content-type': 'text/plain' }).end('boom');
        else if (path === '/redirect') res.writeHead(302, { location: '/ok' }).end();
        else if (path === '/hang') pending.push(res); // never answers
        else res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const res of pending) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('POSTs the JSON body with the given headers; 2xx is success', async () => {
    const body = JSON.stringify({ hello: 'world' });
    const result = await deliver({ url: `${base}/ok`, body, headers: { 'x-rockit-subscriptions': 'tok' }, timeoutMs: 5000 });
    expect(result).toMatchObject({ ok: true, httpStatus: 204 });
    expect(result.error).toBeUndefined();
    expect(result.ms).toBeGreaterThanOrEqual(0);
    const last = received.at(-1)!;
    expect(last).toMatchObject({ method: 'POST', url: '/ok', body });
    expect(last.headers['content-type']).toBe('application/json');
    expect(last.headers['x-rockit-subscriptions']).toBe('tok');
  });

  it('a non-2xx answer is a failure with its status', async () => {
    expect(await deliver({ url: `${base}/fail`, body: '{}', timeoutMs: 5000 })).toMatchObject({ ok: false, httpStatus: 500, error: 'receiver answered HTTP 500' });
  });

  it('does not follow redirects', async () => {
    const before = received.length;
    expect(await deliver({ url: `${base}/redirect`, body: '{}', timeoutMs: 5000 })).toMatchObject({ ok: false, httpStatus: 302 });
    expect(received.length).toBe(before + 1);
  });

  it('gives up after the timeout', async () => {
    const result = await deliver({ url: `${base}/hang?token=SECRETPART`, body: '{}', timeoutMs: 200 });
    expect(result.ok).toBe(false);
    expect(result.httpStatus).toBeUndefined();
    expect(result.error).toBe('no answer within 200 ms');
    expect(result.error).not.toContain('SECRETPART');
  });

  it('reports a refused connection and a cancel without the URL', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await deliver({ url: `http://127.0.0.1:${port}/hooks/T000/SECRET`, body: '{}', timeoutMs: 5000 });
    expect(refused).toMatchObject({ ok: false, error: 'connection failed', errorCode: 'ECONNREFUSED' });

    const controller = new AbortController();
    const promise = deliver({ url: `${base}/hang`, body: '{}', timeoutMs: 60_000, signal: controller.signal });
    controller.abort();
    expect(await promise).toMatchObject({ ok: false, error: 'delivery canceled' });
  });

  describe('SSRF guard (addressPolicy)', () => {
    /** Resolves `hooks.example` (which the system resolver does not know) to 127.0.0.1; counts its calls. */
    const calls: string[] = [];
    const lookup: HostLookup = async (host) => {
      calls.push(host);
      if (host === 'hooks.example') return [{ address: '127.0.0.1', family: 4 }];
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    };
    const port = () => new URL(base).port;

    it('refuses a private IP literal and a name resolving to one; nothing reaches the address', async () => {
      const before = received.length;
      for (const url of [`${base}/ok`, `http://[::1]:${port()}/ok`, 'http://169.254.169.254/latest']) {
        expect(await deliver({ url, body: '{}', timeoutMs: 5000, addressPolicy: isPublicAddress, lookup }), url)
          .toMatchObject({ ok: false, error: 'target resolves to a private address' });
      }
      const viaName = await deliver({ url: `http://hooks.example:${port()}/ok?token=SECRETPART`, body: '{}', timeoutMs: 5000, addressPolicy: isPublicAddress, lookup });
      expect(viaName).toMatchObject({ ok: false, error: 'target resolves to a private address' });
      expect(viaName.httpStatus).toBeUndefined();
      expect(received.length).toBe(before);
    });

    it('refuses a name when any of its addresses is refused', async () => {
      const mixed: HostLookup = async () => [{ address: '93.184.215.14', family: 4 }, { address: '10.0.0.7', family: 4 }];
      expect(await deliver({ url: 'http://mixed.example/x', body: '{}', timeoutMs: 5000, addressPolicy: isPublicAddress, lookup: mixed }))
        .toMatchObject({ ok: false, error: 'target resolves to a private address' });
    });

    it('connects to the address it checked, resolving the name once (no second lookup to rebind)', async () => {
      calls.length = 0;
      const onlyLoopback = (address: string) => address === '127.0.0.1';
      const result = await deliver({ url: `http://hooks.example:${port()}/ok`, body: '{"a":1}', timeoutMs: 5000, addressPolicy: onlyLoopback, lookup });
      expect(result).toMatchObject({ ok: true, httpStatus: 204 });
      expect(calls).toEqual(['hooks.example']);
      const last = received.at(-1)!;
      expect(last).toMatchObject({ url: '/ok', body: '{"a":1}' });
      expect(last.headers.host).toBe(`hooks.example:${port()}`);
    });

    it('a name that does not resolve is a connection failure', async () => {
      expect(await deliver({ url: 'http://nowhere.example/x', body: '{}', timeoutMs: 5000, addressPolicy: isPublicAddress, lookup }))
        .toMatchObject({ ok: false, error: 'connection failed', errorCode: 'ENOTFOUND' });
    });

    it('without a policy, private targets are reached as before', async () => {
      expect(await deliver({ url: `http://hooks.example:${port()}/ok`, body: '{}', timeoutMs: 5000, lookup })).toMatchObject({ ok: true, httpStatus: 204 });
    });
  });

  it('refuses URLs that are not http(s)', async () => {
    expect(await deliver({ url: 'file:///etc/passwd', body: '{}', timeoutMs: 1000 })).toMatchObject({ ok: false, error: 'URL scheme must be http or https' });
    expect(await deliver({ url: 'not a url', body: '{}', timeoutMs: 1000 })).toMatchObject({ ok: false, error: 'invalid URL' });
  });
});
