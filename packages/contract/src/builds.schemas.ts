import { Type, type Static } from '@sinclair/typebox';
import { AppName, Ok, UnixSeconds } from './common.js';
import { TaskSchema } from './tasks.schemas.js';

/** Imports of native builds (spec §7.2), their uploads and delta pushes. */

/** Most chunk ids one `POST /be/v1/builds/chunks` may ask about. */
export const MAX_CHUNK_IDS = 10_000;

export const SubmitBuildBody = Type.Object({
  appName: AppName(),
  url: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'http(s)://, or in cluster mode s3://<blob bucket>/<blob prefix>/incoming/<orgName>/<key> (nothing else of S3); absent = upload' })),
  size: Type.Optional(Type.Integer({ minimum: 0, description: 'announced size in bytes (checked)' })),
  sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$', description: 'announced SHA-256, hex (checked)' })),
  buildName: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  live: Type.Optional(Type.Boolean({ description: 'false: publish the image and patches but keep release.json on the current build (staged push); default true' })),
  delta: Type.Optional(Type.Boolean({ description: 'true: the upload is a delta (docs/FORMATS.md "Delta") against the app\'s kept builds instead of a tar; uploads only, no size or sha256' })),
}, { additionalProperties: false });
export type SubmitBuildInput = Static<typeof SubmitBuildBody>;

export const UploadSchema = Type.Object({
  url: Type.String({ description: 'absolute URL to PUT the tar to (carries a one-time token)' }),
  method: Type.Literal('PUT'),
  expires: UnixSeconds('upload deadline'),
});
export type UploadDto = Static<typeof UploadSchema>;

export const SubmitBuildResponse = Ok({ task: TaskSchema, upload: Type.Optional(UploadSchema) });
/** `POST /be/v1/builds`: the first task and, for uploads, where to PUT the tar. */
export type SubmitBuildAnswer = Static<typeof SubmitBuildResponse>;

export const KnownChunksBody = Type.Object({
  appName: AppName(),
  ids: Type.Array(Type.String({ pattern: '^[0-9a-f]{64}$', description: 'chunk id: lower-case hex SHA-256 of its raw bytes' }), { maxItems: MAX_CHUNK_IDS }),
}, { additionalProperties: false });
export type KnownChunksInput = Static<typeof KnownChunksBody>;

export const KnownChunksResponse = Ok({ known: Type.Array(Type.String(), { description: 'the ids asked about that the server holds, in the order asked' }) });
export type KnownChunksAnswer = Static<typeof KnownChunksResponse>;

export const UploadStatusSchema = Type.Object({
  taskName: Type.String(),
  state: Type.Union([Type.Literal('waiting'), Type.Literal('received'), Type.Literal('expired')]),
  receivedBytes: Type.Integer({ description: 'bytes the server holds; a resumed PUT continues here' }),
  sizeBytes: Type.Union([Type.Integer(), Type.Null()], { description: 'the size announced by the client, once known' }),
  expires: UnixSeconds('upload deadline'),
});
/** What `GET /be/v1/uploads/{taskName}` and every PUT answer under `upload` (decided; README "Resumable uploads"). */
export type UploadStatusDto = Static<typeof UploadStatusSchema>;
