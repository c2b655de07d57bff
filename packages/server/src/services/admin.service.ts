import { toUnixSeconds } from '../domain/clock.js';
import { requireAdmin, type Principal, type ServiceDeps } from './context.js';
import type { TaskDto } from '@rockit/contract';
import { toTaskDto } from './mappers.js';
import type { TaskQueue } from '../queue/task-queue.js';

/** Installation-level operations behind the admin token. */
export class AdminService {
  constructor(
    private readonly deps: ServiceDeps,
    /** Where the task goes; it wakes an in-process worker once the task is committed. */
    private readonly queue: TaskQueue,
  ) {}

  ping(auth: Principal): { pong: true; time: number } {
    requireAdmin(auth);
    return { pong: true, time: toUnixSeconds(this.deps.clock.now()) };
  }

  /** Submits an org-less `hello` task; a worker echoes `message` (and runs self-checks with `maintenance`). */
  async hello(auth: Principal, input: { message: string; maintenance?: boolean }): Promise<TaskDto> {
    requireAdmin(auth);
    const row = await this.queue.enqueue(undefined, {
      type: 'hello',
      payload: { message: input.message, maintenance: input.maintenance ?? false },
    });
    return toTaskDto(row);
  }
}
