// Piscina worker entry: hash + compress one batch. Loaded by codec-pool.ts from the compiled dist/ folder.
import { move } from 'piscina';
import { encodeBatch, type CodecBatch } from './codec-batch.js';

export default function run(batch: CodecBatch): unknown {
  const packed = encodeBatch(batch);
  return move(packed);
}
