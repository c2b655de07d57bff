// image.json: the small JSON pointer at the root of an image folder (docs/FORMATS.md, "Image > image.json").
import { CorruptionError, FormatError } from '../errors.js';
import { IMAGE_FORMAT_VERSION, IMAGE_JSON_FORMAT, MANIFEST_PREFIX, MANIFEST_SUFFIX } from './constants.js';

export interface ImageJson {
  format: typeof IMAGE_JSON_FORMAT;
  formatVersion: number;
  manifest: { name: string; sha256: string; sizeBytes: number };
  /** Sum of regular file sizes. */
  rawBytes: number;
  /** Sum of pack sizes. */
  storedBytes: number;
  chunkCount: number;
  fileCount: number;
  packCount: number;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parses and validates image.json. Throws CorruptionError 'image-json' for unparsable JSON, FormatError for wrong content. */
export function parseImageJson(bytes: Uint8Array): ImageJson {
  let v: any;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new CorruptionError('image-json', 'image.json', 'image.json is not valid JSON (damaged)');
  }
  if (typeof v !== 'object' || v === null || v.format !== IMAGE_JSON_FORMAT) throw new FormatError('image.json: not a ROCKIT image pointer', 'format-bad-magic');
  if (v.formatVersion !== IMAGE_FORMAT_VERSION) throw new FormatError(`image.json: unsupported format version ${String(v.formatVersion)}`, 'format-unsupported-version');
  const m = v.manifest;
  const nameOk =
    typeof m?.name === 'string' && m.name.startsWith(MANIFEST_PREFIX) && m.name.endsWith(MANIFEST_SUFFIX) && /^[0-9a-zA-Z._-]+$/.test(m.name);
  if (!nameOk || typeof m.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(m.sha256) || !isCount(m.sizeBytes)) {
    throw new FormatError('image.json: invalid manifest pointer', 'format-invalid');
  }
  for (const k of ['rawBytes', 'storedBytes', 'chunkCount', 'fileCount', 'packCount']) {
    if (!isCount(v[k])) throw new FormatError(`image.json: invalid ${k}`, 'format-invalid');
  }
  return {
    format: IMAGE_JSON_FORMAT,
    formatVersion: v.formatVersion,
    manifest: { name: m.name, sha256: m.sha256, sizeBytes: m.sizeBytes },
    rawBytes: v.rawBytes,
    storedBytes: v.storedBytes,
    chunkCount: v.chunkCount,
    fileCount: v.fileCount,
    packCount: v.packCount,
  };
}
