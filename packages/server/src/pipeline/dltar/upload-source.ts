// The dltar step's upload source: the object a client PUT, verified in place.
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { StepError } from '../errors.js';
import type { ObtainTarOptions, ObtainedTar } from '../dltar.js';
import { deleteQuietly, openRead } from '../store-io.js';
import { lastSegment, sizeMismatch, storageFailed, tooLarge } from './download-errors.js';
import { streamAndVerify } from './verify.js';

/** Verifies the object at `uploadKey` (see `obtainTar`). */
export async function verifyUpload(options: ObtainTarOptions, uploadKey: string): Promise<ObtainedTar> {
  const { blobStore } = options;
  let head: { sizeBytes: number } | null;
  try {
    head = await blobStore.head(uploadKey);
  } catch (err) {
    throw storageFailed('cannot read the uploaded build', err);
  }
  if (head === null) throw new StepError('upload-missing', 'the build was not uploaded (no object at the upload URL)');
  if (options.sizeBytes !== undefined && head.sizeBytes !== options.sizeBytes) {
    await deleteQuietly(blobStore, uploadKey);
    throw sizeMismatch(head.sizeBytes, options.sizeBytes, 'the uploaded build');
  }
  if (head.sizeBytes > options.maxBytes) {
    await deleteQuietly(blobStore, uploadKey);
    throw tooLarge(head.sizeBytes, options.maxBytes);
  }
  const known = options.uploadDigest;
  if (known !== undefined) {
    if (options.sha256 !== undefined && known.sha256 !== options.sha256.toLowerCase()) {
      await deleteQuietly(blobStore, uploadKey);
      throw new StepError('sha256-mismatch', `the uploaded build: SHA-256 is ${known.sha256}, expected ${options.sha256.toLowerCase()}`, {
        sha256Actual: known.sha256,
        sha256Expected: options.sha256.toLowerCase(),
      });
    }
    options.onProgress?.({ receivedBytes: head.sizeBytes, totalBytes: head.sizeBytes, fraction: 1 });
    return { tarKey: uploadKey, sizeBytes: head.sizeBytes, sha256: known.sha256, compression: known.compression };
  }
  let body: Readable;
  try {
    body = await openRead(blobStore, uploadKey);
  } catch (err) {
    throw storageFailed('cannot read the uploaded build', err);
  }
  return streamAndVerify(
    options,
    { body, totalBytes: head.sizeBytes, classify: (err) => storageFailed('reading the uploaded build failed', err) },
    {
      shown: 'the uploaded build',
      filename: lastSegment(uploadKey),
      write: async (stream) => {
        await pipeline(stream, new Writable({ write: (_c, _e, cb) => cb() }));
      },
      resultKey: uploadKey,
      onRefused: () => deleteQuietly(blobStore, uploadKey),
      onAnyFailure: async () => {},
    },
  );
}
