/**
 * Task types of the import pipeline (api.md §7.2), in the order an import runs them: an app is
 * `processing` while one of them is submitted or running.
 */
export const IMPORT_TASK_TYPES = ['dltar', 'mkraw', 'deploy'] as const;

export type ImportTaskType = (typeof IMPORT_TASK_TYPES)[number];

/** Whether a task of this type is a step of the import pipeline. */
export const isImportTaskType = (type: string): type is ImportTaskType => (IMPORT_TASK_TYPES as readonly string[]).includes(type);
