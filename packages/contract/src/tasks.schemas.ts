import { Type, type Static } from '@sinclair/typebox';
import { UnixSeconds } from './common.js';

/** Tasks (spec §8). */

export const TASK_STATUSES = ['submitted', 'running', 'succeeded', 'failed', 'expired', 'canceled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/**
 * A failed task's error: a message plus the documented detail fields (api.md §8). The schema leaves
 * it open (any object), so this type is stated by hand; the detail fields are all optional.
 */
export interface TaskErrorDetail {
  message?: string;
  httpStatus?: number;
  exitCode?: number;
  sizeBytesActual?: number;
  sizeBytesExpected?: number;
  fileReadFailed?: { filename?: string; typeExpected?: string; typeDetected?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export const TaskSchema = Type.Object(
  {
    name: Type.String({ description: 't_ + a time-sortable id' }),
    type: Type.String({ description: 'dltar|mkraw|deploy|trace|hello|cleanup' }),
    status: Type.Union(TASK_STATUSES.map((s) => Type.Literal(s))),
    appName: Type.Union([Type.String(), Type.Null()]),
    buildId: Type.Union([Type.Integer(), Type.Null()]),
    progress: Type.Number({ minimum: 0, maximum: 1 }),
    attempts: Type.Integer(),
    warnings: Type.Array(Type.Object({ code: Type.String(), message: Type.String(), acknowledged: Type.Boolean() })),
    // Unsafe keeps the document's `{ description }` (any value) while the static type says what is stored.
    error: Type.Unsafe<TaskErrorDetail | null>(Type.Unknown({ description: 'null, or { message, ...detail fields }' })),
    result: Type.Unsafe<Record<string, unknown> | null>(Type.Unknown({ description: 'null, or the handler result object' })),
    created: UnixSeconds('submitted'),
    started: Type.Union([UnixSeconds('first started'), Type.Null()]),
    ended: Type.Union([UnixSeconds('ended'), Type.Null()]),
  },
  { title: 'Task' },
);
export type TaskDto = Static<typeof TaskSchema>;
