/**
 * The server's timers, in one place so `close` can stop them all. Housekeeping runs every ten
 * minutes on every node (each purge is safe to run twice); the timers never keep the process alive.
 */
import type { MaintenanceService } from './services/maintenance.service.js';

export const HOUSEKEEPING_INTERVAL_MS = 10 * 60 * 1000;

export class Scheduler {
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly maintenance: MaintenanceService) {}

  start(): void {
    const housekeeping = setInterval(() => void this.maintenance.housekeep(), HOUSEKEEPING_INTERVAL_MS);
    housekeeping.unref();
    this.timers.push(housekeeping);
  }

  /** Idempotent; a round already running finishes on its own. */
  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
  }
}
