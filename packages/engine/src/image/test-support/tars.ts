// Building tar archives in memory for tests (tar-stream's packer), including hostile ones.
import * as tarStream from 'tar-stream';

export interface TarItem {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'fifo';
  content?: Uint8Array | string;
  linkname?: string;
  mode?: number;
}

export async function makeTar(items: TarItem[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const it of items) {
    const type = it.type ?? 'file';
    const content = it.content === undefined ? undefined : Buffer.from(it.content);
    await new Promise<void>((resolve, reject) => {
      const header = { name: it.name, type, linkname: it.linkname, mode: it.mode ?? (type === 'directory' ? 0o755 : 0o644), size: type === 'file' ? (content?.length ?? 0) : 0 };
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (type === 'file') pack.entry(header, content ?? Buffer.alloc(0), done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}
