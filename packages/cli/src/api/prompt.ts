// Reading a secret: from a pipe (`--password-stdin`, the whole input minus one trailing newline)
// or typed at a terminal without echo.
import type { InputStream, OutputStream } from './context.js';

/** Reads all of stdin as text and drops one trailing newline (CRLF or LF). */
export async function readAllStdin(stdin: InputStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin as AsyncIterable<Buffer | string>) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/**
 * Prompts on `output` and reads one line from a TTY `input` in raw mode, echoing nothing.
 * Backspace edits; Ctrl-C or Ctrl-D on an empty line reject. Throws when `input` is not a TTY.
 */
export function promptHidden(input: InputStream, output: OutputStream, question: string): Promise<string> {
  if (!input.isTTY || typeof input.setRawMode !== 'function') {
    return Promise.reject(new Error('no terminal to ask for the password: use --password-stdin'));
  }
  const setRaw = input.setRawMode.bind(input);
  output.write(question);
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (err: Error | null) => {
      input.removeListener('data', onData);
      setRaw(false);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (data: Buffer | string) => {
      for (const ch of typeof data === 'string' ? data : data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(null);
        if (ch === '\u0003') return finish(new Error('canceled'));
        if (ch === '\u0004') {
          if (value.length === 0) return finish(new Error('canceled'));
          continue;
        }
        if (ch === '\u007f' || ch === '\b') {
          value = [...value].slice(0, -1).join('');
          continue;
        }
        value += ch;
      }
    };
    setRaw(true);
    input.resume();
    input.on('data', onData);
  });
}
