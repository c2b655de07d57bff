import type { TaskStatus } from '@rockit/contract';

// Kept here, not imported from @rockit/contract: the CLI takes only types from the contract, so
// it loads no schema at run time. The type checks below keep the lists equal to the contract's.

export const TASK_TYPES = ['dltar', 'mkraw', 'deploy', 'trace', 'hello', 'cleanup'] as const;
export const TASK_STATUSES = ['submitted', 'running', 'succeeded', 'failed', 'expired', 'canceled'] as const satisfies readonly TaskStatus[];
// Fails to compile when the contract gains a status this list lacks.
const _everyStatus: Exclude<TaskStatus, (typeof TASK_STATUSES)[number]> extends never ? true : never = true;

/** Statuses after which a task never changes again on its own (a retry makes a new run). */
export const FINAL_TASK_STATUSES: ReadonlySet<string> = new Set<TaskStatus>(['succeeded', 'failed', 'expired', 'canceled']);
