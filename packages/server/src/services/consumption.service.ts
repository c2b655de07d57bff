import { monthlyConsumption, storedBytesOfApps } from '../db/repositories/app.repository.js';
import { publishedBytesByDeployment } from '../db/repositories/deployment.repository.js';
import type { ConsumptionDto } from '@rockit/contract';
import { requirePermission, type Principal, type ServiceDeps } from './context.js';

/**
 * Storage figures of the caller's org (`consumption.read`, api.md §12), read from the records the
 * import pipeline keeps (no walk over the stores): zeros until something was imported or published.
 */
export class ConsumptionService {
  constructor(private readonly deps: ServiceDeps) {}

  async get(auth: Principal, opts: { months?: number } = {}): Promise<ConsumptionDto> {
    const user = requirePermission(auth, 'consumption', 'read');
    const [apps, deployments, months] = await Promise.all([
      storedBytesOfApps(this.deps.db, user.orgId),
      publishedBytesByDeployment(this.deps.db, user.orgId),
      opts.months === undefined ? undefined : monthlyConsumption(this.deps.db, user.orgId, this.deps.clock.now(), opts.months),
    ]);
    return { apps, deployments, ...(months ? { months } : {}) };
  }
}
