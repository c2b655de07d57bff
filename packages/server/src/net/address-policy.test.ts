import { describe, expect, it } from 'vitest';
import { AddressRefusedError, checkedLookup, isPublicAddress, namesRefusedHost, pinnedLookup, resolveChecked, type HostLookup } from './address-policy.js';

describe('address policy', () => {
  it('judges URLs by IP literal or localhost, without DNS', () => {
    for (const url of ['http://127.0.0.1/x', 'http://localhost/', 'http://LOCALHOST./', 'http://a.localhost:81/', 'http://[::1]/', 'http://10.0.0.1/',
      'http://169.254.169.254/latest', 'http://0x7f.1/', 'http://[::ffff:10.1.2.3]/']) {
      expect(namesRefusedHost(new URL(url), isPublicAddress), url).toBe(true);
    }
    for (const url of ['https://hooks.slack.com/services/T/B/X', 'http://93.184.215.14/', 'http://[2606:4700::1]/', 'http://localhost.example.com/']) {
      expect(namesRefusedHost(new URL(url), isPublicAddress), url).toBe(false);
    }
  });

  it('refuses every non-public range, mapped IPv6 forms and anything that is not an address', () => {
    for (const a of ['198.18.0.1', '198.19.255.255', '192.0.0.8', '240.0.0.1', '255.255.255.255', '100.127.255.255', '64:ff9b::a00:1',
      'ff02::1', 'FE80::1', 'fe80::1%eth0', '::ffff:a9fe:a9fe', '::FFFF:192.168.0.1', 'not-an-ip', '', '300.1.1.1', '1.2.3']) {
      expect(isPublicAddress(a), a).toBe(false);
    }
    for (const a of ['198.20.0.1', '192.0.1.1', '223.255.255.255', '100.63.255.255', '2a00:1450::1', '::ffff:93.184.215.14']) {
      expect(isPublicAddress(a), a).toBe(true);
    }
  });

  it('resolves names once, checks every address, and takes IP literals as they are', async () => {
    const asked: string[] = [];
    const lookup: HostLookup = async (host) => {
      asked.push(host);
      return host === 'mixed.example' ? [{ address: '93.184.215.14', family: 4 }, { address: '::1', family: 6 }] : [{ address: '93.184.215.14', family: 4 }];
    };
    expect(await resolveChecked('public.example', isPublicAddress, lookup)).toEqual([{ address: '93.184.215.14', family: 4 }]);
    const refused = await resolveChecked('mixed.example', isPublicAddress, lookup).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AddressRefusedError);
    expect(refused).toMatchObject({ message: 'target resolves to a private address', refused: { address: '::1', family: 6 } });
    await expect(resolveChecked('127.0.0.1', isPublicAddress, lookup)).rejects.toBeInstanceOf(AddressRefusedError);
    expect(await resolveChecked('::1', undefined, lookup)).toEqual([{ address: '::1', family: 6 }]);
    expect(await resolveChecked('mixed.example', undefined, lookup)).toHaveLength(2);
    expect(asked).toEqual(['public.example', 'mixed.example', 'mixed.example']);
  });

  it('stops waiting for a lookup when the signal aborts', async () => {
    const never: HostLookup = () => new Promise(() => {});
    const controller = new AbortController();
    const pending = resolveChecked('slow.example', isPublicAddress, never, controller.signal);
    controller.abort(new Error('canceled'));
    await expect(pending).rejects.toThrow('canceled');
    await expect(resolveChecked('x.example', undefined, async () => [], controller.signal), 'already aborted').rejects.toThrow('canceled');
  });

  it('pins socket lookups to the checked addresses', () => {
    const lookup = pinnedLookup([{ address: '93.184.215.14', family: 4 }, { address: '2606:4700::1', family: 6 }]);
    const answers: unknown[][] = [];
    const record = (...args: unknown[]) => answers.push(args);
    lookup('any.example', { all: true }, record);
    lookup('any.example', { family: 6 }, record);
    lookup('any.example', {}, record);
    expect(answers[0]).toEqual([null, [{ address: '93.184.215.14', family: 4 }, { address: '2606:4700::1', family: 6 }]]);
    expect(answers[1]).toEqual([null, '2606:4700::1', 6]);
    expect(answers[2]).toEqual([null, '93.184.215.14', 4]);
    const only4 = pinnedLookup([{ address: '93.184.215.14', family: 4 }]);
    only4('any.example', { family: 6 }, record);
    expect(answers[3][0]).toMatchObject({ code: 'ENOTFOUND' });
  });

  it('checkedLookup: resolves each connection once, checks it, answers only the checked addresses', async () => {
    const answers = [[{ address: '93.184.215.14', family: 4 as const }], [{ address: '169.254.169.254', family: 4 as const }]];
    let calls = 0;
    const lookup: HostLookup = async () => answers[Math.min(calls++, answers.length - 1)];
    const fn = checkedLookup(isPublicAddress, lookup);
    const ask = (options: { all?: boolean; family?: number }) =>
      new Promise<{ err: Error | null; address: unknown; family?: number }>((resolve) => {
        fn('s3.example', options as never, ((err: Error | null, address: unknown, family?: number) => resolve({ err, address, family })) as never);
      });
    expect(await ask({})).toEqual({ err: null, address: '93.184.215.14', family: 4 });
    // The name now rebinds to the metadata service: the next connection is refused.
    const second = await ask({ all: true });
    expect(second.err).toBeInstanceOf(AddressRefusedError);
    expect(calls).toBe(2);
  });
});
