// Piscina worker entry: hash + compress one batch (build), decode + verify one batch, or decode + verify + write
// one read of a pack (extract).
// Loaded by codec-pool.ts from the compiled dist/ folder.
import { move } from 'piscina';
import { decodeBatch, encodeBatch, type CodecBatch, type DecodeBatch } from './codec-batch.js';
import { decodeAndWrite, type DecodeWriteJob } from './decode-write.js';

export default function run(batch: CodecBatch | DecodeBatch | DecodeWriteJob): unknown {
  const kind = 'kind' in batch ? batch.kind : 'encode';
  const packed = kind === 'decode' ? decodeBatch(batch as DecodeBatch) : kind === 'decode-write' ? decodeAndWrite(batch as DecodeWriteJob) : encodeBatch(batch as CodecBatch);
  return move(packed);
}
