import { Type, type Static } from '@sinclair/typebox';
import { Bytes, Name, Ok, UnixSeconds } from './common.js';

/** FastStart trainings (spec §10) and the play traces they learn from. */

/** Highest `nTracesReliable` an app may be given. */
export const MAX_N_TRACES_RELIABLE = 10_000;

export const TrainingSchema = Type.Object(
  {
    appName: Name('the app'),
    nTracesReliable: Type.Integer({ minimum: 1, description: 'new traces that start automatic processing' }),
    auto: Type.Boolean({ description: 'process traces by itself once nTracesReliable new ones arrived' }),
    traces: Type.Integer({ minimum: 0, description: 'traces stored for the app' }),
    tracesSinceLastImage: Type.Integer({ minimum: 0, description: 'traces that arrived since processing last ran' }),
    lastProcessed: Type.Union([Type.Integer(), Type.Null()], { description: 'last processing (UNIX seconds); null before the first' }),
    quality: Type.Union([
      Type.Object({
        coverage: Type.Number({ minimum: 0, maximum: 1, description: 'mean fraction of the traces\' read bytes that fall on the build' }),
        preloadBytes: Type.Object({
          '25Mbit': Bytes('predicted preload at 25 Mbit/s'),
          '100Mbit': Bytes('predicted preload at 100 Mbit/s'),
          '1Gbit': Bytes('predicted preload at 1 Gbit/s'),
        }),
      }),
      Type.Null(),
    ], { description: 'of the published image, from the last processing; null before the first' }),
  },
  { title: 'Training' },
);
export type TrainingDto = Static<typeof TrainingSchema>;

export const PatchTrainingBody = Type.Object(
  {
    appName: Name(),
    nTracesReliable: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_N_TRACES_RELIABLE })),
    auto: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type PatchTrainingInput = Static<typeof PatchTrainingBody>;

export const TraceSchema = Type.Object(
  {
    id: Type.String({ description: 'tr_…' }),
    appName: Name(),
    buildId: Type.Union([Type.Integer(), Type.Null()]),
    dxfName: Type.Union([Type.String(), Type.Null()]),
    sessionId: Type.String(),
    firstSession: Type.Boolean(),
    records: Type.Integer({ description: 'reads in the trace' }),
    readBytes: Type.Integer({ description: 'sum of the lengths of the reads' }),
    durationMs: Type.Integer({ description: 'time of the last read after the session start' }),
    coverage: Type.Number({ minimum: 0, maximum: 1, description: 'fraction of the read bytes on files (and offsets) of the build' }),
    sizeBytes: Type.Integer({ description: 'stored bytes' }),
    created: UnixSeconds('received'),
  },
  { title: 'Trace' },
);
export type TraceDto = Static<typeof TraceSchema>;

export const ClientAuthBody = Type.Object(
  { orgName: Type.String({ maxLength: 50 }), appName: Type.String({ maxLength: 50 }), key: Type.String({ maxLength: 200 }) },
  { additionalProperties: false },
);
export type ClientAuthInput = Static<typeof ClientAuthBody>;

export const ClientAuthResponse = Ok({
  auth: Type.Object({ token: Type.String(), expires: UnixSeconds('token expiry') }),
  release: Type.Union([Type.Object({}, { additionalProperties: true, description: 'the depot\'s release.json of the app' }), Type.Null()]),
  origins: Type.Optional(Type.Array(Type.Object({ deployment: Name(), token: Type.String() }))),
});
export type ClientAuthAnswer = Static<typeof ClientAuthResponse>;

export const TraceReceiptResponse = Ok({ trace: Type.Object({ id: Type.String(), records: Type.Integer(), coverage: Type.Number() }) }, 'accepted');
/** `POST /client/v1/traces`: the stored trace's id and what it holds. */
export type TraceReceiptAnswer = Static<typeof TraceReceiptResponse>;
