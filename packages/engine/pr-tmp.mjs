import { openImage, openImageSource, readChunks } from './dist/index.js';
import { looksIncompressible, ChunkCompressor } from './dist/codec/chunk-codec.js';
const img = await openImage(openImageSource('/tmp/e4/img'));
let skip = 0, miss = [], tProbe = 0, n = 0, tz = [0, 0];
const h = new Uint32Array(256);
const cNo = new ChunkCompressor(3, false); const out = Buffer.alloc(400000);
for await (const { index, raw } of readChunks(img, img.manifest.chunks.map((_, i) => i))) {
  const c = img.manifest.chunks[index];
  let t = performance.now(); const s = looksIncompressible(raw, h); tProbe += performance.now() - t; n++;
  t = performance.now(); cNo.encodeInto(raw, out, 0); tz[s ? 1 : 0] += performance.now() - t;
  if (s) { skip++; if (c.codec === 1) miss.push([raw.length, c.storedSizeBytes]); }
}
console.log({ n, skip, miss: miss.length, missSample: miss.slice(0, 8), tProbeMs: tProbe.toFixed(0), zstdMsOnKept: tz[0].toFixed(0), zstdMsOnSkipped: tz[1].toFixed(0) });
