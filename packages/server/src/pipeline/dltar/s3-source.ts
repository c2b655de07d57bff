// The dltar step's s3:// source: an object inside the organization's import prefix (cluster mode).
import { DownloadExitCode, StepError, canceledError } from '../errors.js';
import type { ObtainTarOptions } from '../dltar.js';
import { openRead } from '../store-io.js';
import { s3Error } from './download-errors.js';
import { checkAnnounced, type Source } from './verify.js';

/** Opens `s3://bucket/key` through `options.s3Source` (see `obtainTar`). */
export async function openS3(options: ObtainTarOptions, raw: string, url: URL, shown: string): Promise<Source> {
  if (!url.hostname || url.pathname.replace(/^\/+/, '') === '') {
    throw new StepError('download-failed', `${shown}: an s3 URL needs a bucket and a key (s3://bucket/key)`, {
      exitCode: DownloadExitCode.UnsupportedProtocol,
    });
  }
  if (!options.s3Source) {
    throw new StepError('download-failed', 's3:// URLs are not enabled on this installation', {
      exitCode: DownloadExitCode.UnsupportedProtocol,
    });
  }
  // Checked again here (POST /be/v1/builds checked it first): a URL outside the allowed scope is
  // never read, so whether such an object exists cannot be learnt from the outcome.
  const key = options.s3Source.keyOf(raw);
  if (key === null) {
    throw new StepError('download-failed', `${shown}: not inside the organization's import prefix`, {
      exitCode: DownloadExitCode.UnsupportedProtocol,
    });
  }
  const { store } = options.s3Source;
  try {
    const head = await store.head(key);
    if (head === null) {
      throw new StepError('download-failed', `${shown}: no such object`, { httpStatus: 404, exitCode: DownloadExitCode.HttpError });
    }
    const early = checkAnnounced(head.sizeBytes, options, shown);
    if (early) throw early;
    const body = await openRead(store, key);
    return {
      body,
      totalBytes: head.sizeBytes,
      classify: (err) => (options.signal?.aborted ? canceledError(options.signal) : s3Error(err, shown)),
      abort: (reason) => body.destroy(reason),
      close: () => {},
    };
  } catch (err) {
    throw err instanceof StepError ? err : s3Error(err, shown);
  }
}
