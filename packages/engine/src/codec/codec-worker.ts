// Piscina worker entry: hash + compress one batch (build), decode + verify one batch, or decode + verify + write
// one read of a pack (extract), or one piece of a patch apply.
// Loaded by codec-pool.ts from the compiled dist/ folder.
import { move } from 'piscina';
import { decodeBatch, encodeBatch, type CodecBatch, type DecodeBatch } from './codec-batch.js';
import { decodeAndWrite, type DecodeWriteJob } from './decode-write.js';
import { runApplyJob, type ApplyJob } from '../patch/apply-job.js';

export default function run(batch: CodecBatch | DecodeBatch | DecodeWriteJob | ApplyJob): unknown {
  // A plain object, cloned back (nothing to transfer).
  if ('kind' in batch && batch.kind === 'patch-apply') return runApplyJob(batch);
  const kind = 'kind' in batch ? batch.kind : 'encode';
  const packed = kind === 'decode' ? decodeBatch(batch as DecodeBatch) : kind === 'decode-write' ? decodeAndWrite(batch as DecodeWriteJob) : encodeBatch(batch as CodecBatch);
  return move(packed);
}
