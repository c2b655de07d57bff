/**
 * The SSRF guard for addresses that org users give the server to connect to: import download
 * URLs, webhook and Slack subscription targets, S3 deployment endpoints. Which resolved addresses
 * the server may connect to, the name resolution and check in front of a connection, and the
 * pinning of a connection to the addresses that were checked.
 *
 * Lifted by `ROCKIT_ALLOW_PRIVATE_ADDRESSES` (config `allowPrivateAddresses`; the deprecated
 * `ROCKIT_IMPORT_ALLOW_PRIVATE_URLS` too): server.ts then passes no policy, and every address is allowed.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** Whether the server may connect to a resolved address. */
export type AddressPolicy = (address: string, family: 4 | 6) => boolean;

/** One address a host name resolves to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/**
 * Resolves a host name (without IPv6 brackets) to all its addresses; rejects like `dns.lookup`
 * (an error with `code`, e.g. ENOTFOUND) when it does not resolve. Injectable for tests.
 */
export type HostLookup = (hostname: string) => Promise<ResolvedAddress[]>;

/** The operating system's resolver (`dns.lookup`, all addresses, in the resolver's order). */
export const systemLookup: HostLookup = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

/** Thrown by `resolveChecked` when the host resolves to an address the policy refuses. */
export class AddressRefusedError extends Error {
  constructor(readonly refused: ResolvedAddress) {
    super('target resolves to a private address');
    this.name = 'AddressRefusedError';
  }
}

/** The ranges that are not public unicast: every rule of the policy, in one place. */
const NON_PUBLIC: ReadonlyArray<readonly [network: string, prefix: number, type: 'ipv4' | 'ipv6']> = [
  ['0.0.0.0', 8, 'ipv4'], // "this network", unspecified
  ['10.0.0.0', 8, 'ipv4'], // RFC 1918
  ['100.64.0.0', 10, 'ipv4'], // carrier-grade NAT
  ['127.0.0.0', 8, 'ipv4'], // loopback
  ['169.254.0.0', 16, 'ipv4'], // link local, cloud metadata services
  ['172.16.0.0', 12, 'ipv4'], // RFC 1918
  ['192.0.0.0', 24, 'ipv4'], // protocol assignments
  ['192.168.0.0', 16, 'ipv4'], // RFC 1918
  ['198.18.0.0', 15, 'ipv4'], // benchmarking
  ['224.0.0.0', 3, 'ipv4'], // multicast, reserved, broadcast
  ['::', 128, 'ipv6'], // unspecified
  ['::1', 128, 'ipv6'], // loopback
  ['64:ff9b::', 32, 'ipv6'], // NAT64 can reach private IPv4
  ['fc00::', 7, 'ipv6'], // unique local
  ['fe80::', 10, 'ipv6'], // link local
  ['ff00::', 8, 'ipv6'], // multicast
];

/** NON_PUBLIC as a BlockList; IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) match the IPv4 rules. */
const nonPublic = new BlockList();
for (const [network, prefix, type] of NON_PUBLIC) nonPublic.addSubnet(network, prefix, type);

/**
 * An `AddressPolicy` that allows only public unicast addresses: refuses loopback, private (RFC 1918),
 * carrier-grade NAT, link-local (cloud metadata services), unique-local, unspecified, multicast and
 * reserved ranges, and IPv4-mapped IPv6 forms of them. Anything that is not an IP address is refused.
 * The family is taken from the address itself (`family` is there to fit `AddressPolicy`).
 */
export function isPublicAddress(address: string, _family?: 4 | 6): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  try {
    return !nonPublic.check(address, family === 6 ? 'ipv6' : 'ipv4');
  } catch {
    return false; // e.g. an IPv6 address with a zone id
  }
}

/** A URL's host name as resolvers and sockets want it: IPv6 literals without brackets. */
export const urlHost = (url: URL): string => url.hostname.replace(/^\[|\]$/g, '');

/**
 * Whether a URL names, without any DNS, a host the policy refuses: an IP literal the policy
 * refuses, or `localhost` / `*.localhost` (RFC 6761: always loopback). Names that may resolve
 * anywhere are not judged here (they are checked when connecting, with `resolveChecked`).
 */
export function namesRefusedHost(url: URL, policy: AddressPolicy): boolean {
  const host = urlHost(url).toLowerCase().replace(/\.$/, '');
  const family = isIP(host);
  if (family !== 0) return !policy(host, family === 6 ? 6 : 4);
  return host === 'localhost' || host.endsWith('.localhost');
}

/**
 * Every address `host` resolves to (an IP literal: itself, without DNS), each checked against
 * `policy` (absent: all allowed). Throws `AddressRefusedError` if any address is refused (a name
 * with one public and one private address is refused: the connection could reach either), and
 * the lookup's error when the name does not resolve. With `signal`, rejects with its reason as soon
 * as it aborts (a lookup still running is left to finish; its answer is dropped).
 */
export async function resolveChecked(
  host: string,
  policy: AddressPolicy | undefined,
  lookup: HostLookup = systemLookup,
  signal?: AbortSignal,
): Promise<ResolvedAddress[]> {
  const family = isIP(host);
  const addresses: ResolvedAddress[] = family !== 0 ? [{ address: host, family: family === 6 ? 6 : 4 }] : await abortable(lookup(host), signal);
  const refused = policy ? addresses.find((a) => !policy(a.address, a.family)) : undefined;
  if (refused) throw new AddressRefusedError(refused);
  return addresses;
}

/** Settles like `work`, or rejects with `signal`'s reason once it aborts, whichever comes first. */
function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * A socket `lookup` (for `http.request`, `net.connect`) that answers with the given addresses and
 * never asks DNS again: a connection made with it reaches only addresses that `resolveChecked`
 * passed, so a name that resolves differently a moment later (DNS rebinding) changes nothing.
 */
export function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return (hostname, options, callback) => {
    const fit = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
    if (fit.length === 0) {
      const err: NodeJS.ErrnoException = new Error(`${hostname} has no address of the wanted family`);
      err.code = 'ENOTFOUND';
      callback(err, '', 0);
    } else if (options.all) {
      callback(null, fit);
    } else {
      callback(null, fit[0].address, fit[0].family);
    }
  };
}

/**
 * A socket `lookup` for connections that a library opens itself (an http.Agent's, e.g. the AWS
 * SDK's): each connection resolves its host once with `lookup`, checks every address against
 * `policy` (`resolveChecked`) and connects only to those addresses (`pinnedLookup`). A refused
 * name fails the connection with `AddressRefusedError`. IP literals never reach a socket lookup
 * (Node connects to them directly): callers refuse those beforehand with `namesRefusedHost`.
 */
export function checkedLookup(policy: AddressPolicy, lookup: HostLookup = systemLookup): LookupFunction {
  return (hostname, options, callback) => {
    resolveChecked(hostname.replace(/^\[|\]$/g, ''), policy, lookup).then(
      (addresses) => pinnedLookup(addresses)(hostname, options, callback),
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}
