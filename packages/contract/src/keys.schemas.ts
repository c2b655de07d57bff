import { Type, type Static } from '@sinclair/typebox';
import { Name, UnixSeconds } from './common.js';

/** Download keys of apps (api.md §9.2). */

export const DownloadKeySchema = Type.Object(
  {
    id: Type.String({ description: 'dk_…' }),
    appName: Name(),
    label: Type.String(),
    created: UnixSeconds('created'),
    lastUsed: Type.Union([UnixSeconds('last exchanged for a download token or used to upload a trace'), Type.Null()]),
  },
  { title: 'DownloadKey' },
);
export type DownloadKeyDto = Static<typeof DownloadKeySchema>;

export const CreateDownloadKeyBody = Type.Object(
  { appName: Name(), label: Type.Optional(Type.String({ maxLength: 200, description: 'for people (e.g. "launcher 2.x")' })) },
  { additionalProperties: false },
);
export type CreateDownloadKeyInput = Static<typeof CreateDownloadKeyBody>;

/** The answer of a create: the key with its secret, shown once. */
export const CreatedDownloadKeySchema = Type.Composite([DownloadKeySchema, Type.Object({ key: Type.String({ description: 'the secret; shown once' }) })]);
export type CreatedDownloadKeyDto = Static<typeof CreatedDownloadKeySchema>;
