// Opens a make input by kind: image (folder with image.json, or http(s) URL), tar file, or plain folder.

import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { IMAGE_JSON_NAME } from '../format/constants.js';
import type { ChunkingParams } from '../format/types.js';
import { PatchInputError } from './errors.js';
import { openFolderSide } from './folder-side.js';
import { openImageSide, openTarSide } from './image-side.js';
import type { BuildSide } from './side.js';

/**
 * Opens `input` for reading. `chunking` (A's parameters) is used to cut B when B is not an
 * image, so that chunks both builds share get the same names.
 * Errors: PatchInputError (missing input), the image reader's and tar reader's errors.
 */
export async function openBuildSide(input: string, chunking?: ChunkingParams): Promise<BuildSide> {
  if (/^https?:\/\//i.test(input)) return openImageSide(input);
  const st = await lstat(input).catch(() => undefined);
  if (!st) throw new PatchInputError(`input not found: ${input}`);
  if (st.isDirectory()) {
    const isImage = await lstat(join(input, IMAGE_JSON_NAME)).then(
      (s) => s.isFile(),
      () => false,
    );
    return isImage ? openImageSide(input) : openFolderSide(input, chunking);
  }
  if (st.isFile()) return openTarSide(input, chunking);
  throw new PatchInputError(`unsupported input (expected an image, a tar or a folder): ${input}`);
}
