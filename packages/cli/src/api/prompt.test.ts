import { describe, expect, it } from 'vitest';
import { PassThrough, Readable } from 'node:stream';
import { promptHidden, readAllStdin } from './prompt.js';
import type { InputStream } from './context.js';

/** A stand-in terminal: a stream that says it is a TTY and records raw-mode switches. */
function fakeTty(): { input: InputStream & PassThrough; raw: boolean[] } {
  const raw: boolean[] = [];
  const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: (m: boolean) => raw.push(m) });
  return { input, raw };
}

describe('prompt', () => {
  it('reads a typed password without echo, honouring backspace, and restores the terminal', async () => {
    const { input, raw } = fakeTty();
    let shown = '';
    const answer = promptHidden(input, { write: (s: string) => (shown += s) }, 'password: ');
    input.write('sekx');
    input.write('\u007fret\r');
    await expect(answer).resolves.toBe('sekret');
    expect(shown).toBe('password: \n');
    expect(raw).toEqual([true, false]);
  });

  it('is canceled by Ctrl-C and refuses a non-terminal', async () => {
    const { input, raw } = fakeTty();
    const answer = promptHidden(input, { write: () => true }, 'pw: ');
    input.write('ab\u0003');
    await expect(answer).rejects.toThrow('canceled');
    expect(raw).toEqual([true, false]);
    await expect(promptHidden(Readable.from([]), { write: () => true }, 'pw: ')).rejects.toThrow(/--password-stdin/);
  });

  it('reads piped input whole, dropping one trailing newline only', async () => {
    expect(await readAllStdin(Readable.from([Buffer.from('pa'), Buffer.from('ss \r\n')]))).toBe('pass ');
    expect(await readAllStdin(Readable.from([Buffer.from('a\n\n')]))).toBe('a\n');
  });
});
