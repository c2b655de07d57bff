// Piscina worker entry: hash + compress one batch (build) or decode + verify one batch (extract).
// Loaded by codec-pool.ts from the compiled dist/ folder.
import { move } from 'piscina';
import { decodeBatch, encodeBatch, type CodecBatch, type DecodeBatch } from './codec-batch.js';

export default function run(batch: CodecBatch | DecodeBatch): unknown {
  const packed = 'kind' in batch && batch.kind === 'decode' ? decodeBatch(batch) : encodeBatch(batch as CodecBatch);
  return move(packed);
}
