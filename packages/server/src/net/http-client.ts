/**
 * The server's one HTTP client for URLs that org users give it (import downloads, webhook and Slack
 * deliveries). Every hop's host is resolved once and each address checked against the address
 * policy (`resolveChecked`); the hop's connection then uses a socket `lookup` that answers with
 * exactly those addresses (`pinnedLookup`), so a name whose DNS answer changes after the check (DNS
 * rebinding) cannot lead anywhere else. Redirects are followed by hand, each hop checked like the
 * first; connecting (TCP, and TLS for https) has a time limit. The URL's host stays the Host header
 * and the TLS server name (certificates are checked against it).
 *
 * A fresh connection per hop (no agent pool): a pooled socket would outlive the check that allowed it.
 *
 * On `node:http`, not undici: undici 7 (the last line that runs on Node 20) throws an uncatchable
 * assertion when a peer closes a `Connection: close` answer while the body is paused by backpressure
 * (nodejs/undici#5360, fixed in undici 8, which needs Node 22.19): a hostile download URL could stop
 * the server. See docs/ARCHITECTURE.md.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline as chain, type Readable, type Transform } from 'node:stream';
import { constants as zlib, createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';

import { AddressRefusedError, pinnedLookup, resolveChecked, urlHost, type AddressPolicy, type HostLookup, type ResolvedAddress } from './address-policy.js';

/** Statuses whose Location is followed (fetch's set); any other status is the answer. */
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Default limit for connecting (TCP, and the TLS handshake for https), like fetch's. */
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export interface PinnedRequest {
  url: URL;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: Buffer;
  /** Ends the request (and a body being read) with the signal's reason. */
  signal: AbortSignal;
  /** Which resolved addresses may be reached; absent: any. */
  addressPolicy?: AddressPolicy;
  /** Resolves every hop's host; default: the system resolver. Injectable for tests. */
  lookup?: HostLookup;
  /** Redirects followed at most; 0: a redirect is the answer. Only GETs follow redirects. */
  maxRedirects: number;
  /**
   * Connecting (TCP, and the TLS handshake for https) gives up after this long, with an error of
   * code `ETIMEDOUT`. Default 10 s. Later phases are the caller's to limit (through `signal`).
   */
  connectTimeoutMs?: number;
  /** Undo the answer's Content-Encoding (gzip, deflate, br), as fetch does. Default false. */
  decodeContent?: boolean;
}

export interface PinnedResponse {
  /** The URL of the hop that answered. */
  url: URL;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body (decoded when asked). Destroying it ends the connection. */
  body: Readable;
}

/** A redirect the client refuses to follow: too many hops, or to a scheme other than http/https. */
export class RedirectRefusedError extends Error {
  constructor(
    readonly reason: 'too-many-redirects' | 'unsupported-scheme',
    readonly status: number,
  ) {
    super(reason === 'too-many-redirects' ? 'too many redirects' : 'redirected to an unsupported scheme');
    this.name = 'RedirectRefusedError';
  }
}

/** Thrown when a hop's host resolves to an address the policy refuses; `url` is that hop. */
export class HopRefusedError extends AddressRefusedError {
  constructor(
    refused: AddressRefusedError,
    readonly url: URL,
  ) {
    super(refused.refused);
    this.name = 'HopRefusedError';
  }
}

/**
 * Sends `request`, following redirects for GETs (at most `maxRedirects`, to http/https only), each
 * hop resolved, checked and pinned (see the module comment). Resolves with the final answer once its
 * head arrived (its body unread). Rejects with `HopRefusedError` for a refused address,
 * `RedirectRefusedError` for a refused redirect, the lookup's error (code `ENOTFOUND` etc.) for a
 * name that does not resolve, the signal's reason when it aborts, and the socket's or TLS error
 * otherwise (its errno in `code`).
 */
export async function pinnedRequest(request: PinnedRequest): Promise<PinnedResponse> {
  let url = request.url;
  for (let hop = 0; ; hop++) {
    const res = await sendOnce(request, url);
    const location = res.headers.location;
    const follow = request.method === 'GET' && request.maxRedirects > 0 && REDIRECT_STATUSES.has(res.status) && typeof location === 'string';
    if (!follow) return request.decodeContent ? { ...res, body: decodedBody(res) } : res;
    res.body.destroy();
    if (hop >= request.maxRedirects) throw new RedirectRefusedError('too-many-redirects', res.status);
    const next = new URL(location as string, url);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new RedirectRefusedError('unsupported-scheme', res.status);
    url = next;
  }
}

/** One request over a fresh connection to the checked addresses of `url`'s host only. */
async function sendOnce(request: PinnedRequest, url: URL): Promise<PinnedResponse> {
  let addresses: ResolvedAddress[];
  try {
    addresses = await resolveChecked(urlHost(url), request.addressPolicy, request.lookup, request.signal);
  } catch (err) {
    throw err instanceof AddressRefusedError ? new HopRefusedError(err, url) : err;
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const headers: OutgoingHttpHeaders = { ...request.headers };
  if (request.body !== undefined) headers['content-length'] = request.body.byteLength;
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = send(url, { method: request.method, headers, signal: request.signal, agent: false, lookup: pinnedLookup(addresses) }, resolve);
    req.on('error', reject);
    limitConnectTime(req, url.protocol === 'https:' ? 'secureConnect' : 'connect', request.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    req.end(request.body);
  });
  return { url, status: res.statusCode ?? 0, headers: res.headers, body: res };
}

/** Destroys `req` with an ETIMEDOUT error when its socket has not reached `connected` within `ms`. */
function limitConnectTime(req: ClientRequest, connected: 'connect' | 'secureConnect', ms: number): void {
  req.once('socket', (socket) => {
    if (!socket.connecting) return;
    const timer = setTimeout(() => {
      const err: NodeJS.ErrnoException = new Error(`connecting took more than ${ms / 1000} s`);
      err.code = 'ETIMEDOUT';
      req.destroy(err);
    }, ms);
    const stop = (): void => clearTimeout(timer);
    socket.once(connected, stop);
    socket.once('close', stop);
  });
}

/**
 * The answer's body with its Content-Encoding undone, as fetch delivers it: gzip / x-gzip, deflate
 * and br, several in reverse order of application. A body with an unknown coding is left as sent.
 * Destroying the returned stream destroys the answer, and the answer's errors reach it.
 */
function decodedBody(res: PinnedResponse): Readable {
  const header = res.headers['content-encoding'];
  const codings = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .toLowerCase()
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '' && c !== 'identity')
    .reverse();
  const decoders = codings.map(decoderFor);
  if (decoders.length === 0 || decoders.some((d) => d === undefined)) return res.body;
  const steps = decoders as Transform[];
  chain([res.body, ...steps], () => {});
  return steps[steps.length - 1];
}

/** A lenient decoder (a truncated stream ends without an error, as in fetch) for one content coding. */
function decoderFor(coding: string): Transform | undefined {
  const lenient = { flush: zlib.Z_SYNC_FLUSH, finishFlush: zlib.Z_SYNC_FLUSH };
  if (coding === 'gzip' || coding === 'x-gzip') return createGunzip(lenient);
  if (coding === 'deflate') return createInflate(lenient);
  if (coding === 'br') return createBrotliDecompress({ flush: zlib.BROTLI_OPERATION_FLUSH, finishFlush: zlib.BROTLI_OPERATION_FLUSH });
  return undefined;
}
