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
    pack.on('data', (c: Buffer) => chunks.push(c));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const it of items) {
    const type = it.type ?? 'file';
    const content = it.content === undefined ? undefined : Buffer.from(it.content);
    await new Promise<void>((resolve, reject) => {
      pack.entry(
        { name: it.name, type, linkname: it.linkname, mode: it.mode ?? (type === 'directory' ? 0o755 : 0o644), size: type === 'file' ? (content?.length ?? 0) : 0 },
        type === 'file' ? (content ?? Buffer.alloc(0)) : undefined,
        (err?: Error | null) => (err ? reject(err) : resolve()),
      );
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}
