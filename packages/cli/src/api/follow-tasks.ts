// Following one import through its pipeline (api.md §7.2): dltar → mkraw → deploy.
//
// The server names only the first task when the build is submitted; each later stage is found
// with `GET /be/v1/tasks`. A stage enqueues its follow-up while it runs, so the follow-up was
// created between the stage's submission and its end: among the tasks of the next type for the
// same app (and the same build id, when both carry one) created in that window, ours is the newest
// (by `created`, then by name: task names sort in creation order). An earlier import's follow-up
// can fall in the window too, but only before ours: imports of one app run one at a time. Without
// an `ended` time the window has no upper end and the oldest candidate is taken instead.
import type { ApiClient } from './client.js';
import type { ListBody, SuccessBody, TaskDto } from '@rockit/contract';
import { FINAL_TASK_STATUSES } from './task-states.js';

/** A task of the import pipeline ended in failure (or expired or was canceled). */
export class TaskFailedError extends Error {
  override readonly name = 'TaskFailedError';
  constructor(readonly task: { name: string; type: string; status: string; error?: unknown }) {
    super(`task ${task.name} (${task.type}) ${task.status}${errorMessageOf(task.error)}`);
  }
}

function errorMessageOf(error: unknown): string {
  if (error && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') {
    return `: ${(error as { message: string }).message}`;
  }
  return '';
}

export const IMPORT_PIPELINE = ['dltar', 'mkraw', 'deploy'] as const;

export interface FollowOptions {
  client: ApiClient;
  appName: string;
  /** The task the submission answered with (the first stage). */
  first: TaskDto;
  pollIntervalMs: number;
  sleep: (ms: number) => Promise<void>;
  /** Stage types in order, starting with `first.type`. */
  pipeline?: readonly string[];
  /** Polls to wait for the next stage to appear before giving up. Default: 2 minutes' worth. */
  maxAppearPolls?: number;
  /** Called with every task state seen (the first one too). */
  onUpdate?: (task: TaskDto) => void;
}

/**
 * Waits for every stage to finish and returns their final states in order. Throws
 * `TaskFailedError` as soon as a stage ends in any state but `succeeded`, and an `Error` if a
 * next stage does not appear in time. API failures propagate as `ApiError`/`NetworkError`.
 */
export async function followPipeline(opts: FollowOptions): Promise<TaskDto[]> {
  const pipeline = opts.pipeline ?? IMPORT_PIPELINE;
  const start = pipeline.indexOf(opts.first.type);
  if (start === -1) throw new Error(`task ${opts.first.name} has type ${opts.first.type}, not one of ${pipeline.join(', ')}`);
  const maxAppearPolls = opts.maxAppearPolls ?? Math.max(1, Math.ceil(120_000 / Math.max(1, opts.pollIntervalMs)));
  const done: TaskDto[] = [];
  let task: TaskDto = opts.first;
  for (let stage = start; ; stage++) {
    task = await waitForEnd(opts, task);
    done.push(task);
    if (task.status !== 'succeeded') throw new TaskFailedError(task);
    const nextType = pipeline[stage + 1];
    if (nextType === undefined) return done;
    task = await findNext(opts, task, nextType, done, maxAppearPolls);
  }
}

async function waitForEnd(opts: FollowOptions, initial: TaskDto): Promise<TaskDto> {
  let task = initial;
  opts.onUpdate?.(task);
  while (!FINAL_TASK_STATUSES.has(task.status)) {
    await opts.sleep(opts.pollIntervalMs);
    const res = await opts.client.get<SuccessBody & { task: TaskDto }>(`/be/v1/tasks/${encodeURIComponent(task.name)}`);
    task = res.task;
    opts.onUpdate?.(task);
  }
  return task;
}

function buildIdOf(task: TaskDto): number | null {
  if (typeof task.buildId === 'number') return task.buildId;
  const fromResult = task.result?.buildId;
  return typeof fromResult === 'number' ? fromResult : null;
}

async function findNext(opts: FollowOptions, prev: TaskDto, type: string, seen: readonly TaskDto[], maxPolls: number): Promise<TaskDto> {
  // Servers that name the follow-up in the stage's result are followed exactly; older ones by the window below.
  const named = prev.result?.nextTask;
  if (typeof named === 'string' && named.length > 0) {
    const res = await opts.client.get<SuccessBody & { task: TaskDto }>(`/be/v1/tasks/${encodeURIComponent(named)}`);
    return res.task;
  }
  const seenNames = new Set(seen.map((t) => t.name));
  const buildId = buildIdOf(prev);
  const from = typeof prev.created === 'number' ? prev.created : undefined;
  const to = typeof prev.ended === 'number' ? prev.ended : undefined;
  for (let poll = 0; poll < maxPolls; poll++) {
    if (poll > 0) await opts.sleep(opts.pollIntervalMs);
    const res = await opts.client.get<ListBody & { tasks: TaskDto[] }>('/be/v1/tasks', {
      appName: opts.appName,
      type,
      since: from,
      until: to !== undefined ? to + 1 : undefined, // `until` is exclusive; times are whole seconds
      'order[]': 'created',
      limit: 100,
    });
    const candidates = (res.tasks ?? [])
      .filter(
        (t) =>
          t.type === type &&
          t.appName === opts.appName &&
          !seenNames.has(t.name) &&
          (from === undefined || typeof t.created !== 'number' || t.created >= from) &&
          (to === undefined || typeof t.created !== 'number' || t.created <= to) &&
          (buildId === null || buildIdOf(t) === null || buildIdOf(t) === buildId),
      )
      .sort(byCreation);
    const match = to !== undefined ? candidates[candidates.length - 1] : candidates[0];
    if (match) return match;
  }
  throw new Error(`no ${type} task appeared for app ${opts.appName} after ${prev.type} ${prev.name} succeeded`);
}

function byCreation(a: TaskDto, b: TaskDto): number {
  const ca = a.created ?? 0;
  const cb = b.created ?? 0;
  if (ca !== cb) return ca - cb;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
