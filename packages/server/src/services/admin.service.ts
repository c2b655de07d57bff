import { toUnixSeconds } from '../domain/clock.js';
import { enqueueTask } from '../queue/tasks.queue.js';
import { requireAdmin, type Principal, type ServiceDeps } from './context.js';
import type { TaskDto } from '@rockit/contract';
import { toTaskDto } from './mappers.js';

/** Installation-level operations behind the admin token. */
export class AdminService {
  constructor(
    private readonly deps: ServiceDeps,
    /** Called after a task is committed so an in-process worker starts it without waiting for its poll. */
    private readonly onEnqueued: () => void = () => {},
  ) {}

  ping(auth: Principal): { pong: true; time: number } {
    requireAdmin(auth);
    return { pong: true, time: toUnixSeconds(this.deps.clock.now()) };
  }

  /** Submits an org-less `hello` task; a worker echoes `message` (and runs self-checks with `maintenance`). */
  async hello(auth: Principal, input: { message: string; maintenance?: boolean }): Promise<TaskDto> {
    requireAdmin(auth);
    const row = await enqueueTask(this.deps.db, this.deps.clock.now(), {
      type: 'hello',
      payload: { message: input.message, maintenance: input.maintenance ?? false },
      maxAttempts: this.deps.config.worker.maxAttempts,
    });
    this.onEnqueued();
    return toTaskDto(row);
  }
}
