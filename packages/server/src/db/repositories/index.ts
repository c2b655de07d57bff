import type { DeploymentRow } from '../app-tables.js';
import type { DbCapabilities } from '../capabilities.js';
import { lockApp } from './app.repository.js';
import type { Executor } from './common.js';
import { findDeploymentsByNames, lockDeployment } from './deployment.repository.js';
import { lockRole } from './role.repository.js';

/**
 * The repository functions whose SQL depends on what the database can do (row locks), with the
 * dialect's capabilities already bound: made once with the database (bindRepositories), handed to
 * the services in `ServiceDeps.repos`, so no service sees or passes capabilities. Each takes the
 * transaction it works in (a lock lasts until that transaction ends).
 */
export interface BoundRepositories {
  /** Locks the app row until the transaction ends (no-op without row locks: SQLite serializes writers). */
  lockApp(trx: Executor, appId: string): Promise<void>;
  /** Locks the role row until the transaction ends (no-op without row locks). */
  lockRole(trx: Executor, roleId: string): Promise<void>;
  /** Locks the deployment row until the transaction ends (no-op without row locks). */
  lockDeployment(trx: Executor, deploymentId: string): Promise<void>;
  /**
   * The org's deployments with these names (unknown names absent), share-locked until the transaction
   * ends where the database has row locks: a concurrent delete of one of them waits, or is waited for.
   */
  findDeploymentsByNamesLocked(trx: Executor, orgId: string, names: string[]): Promise<DeploymentRow[]>;
}

/**
 * Binds the capability-dependent repository functions to the database's capabilities. Only the
 * capabilities are bound, not a connection: the functions run in the caller's transaction.
 */
export function bindRepositories(caps: DbCapabilities): BoundRepositories {
  return Object.freeze({
    lockApp: (trx: Executor, appId: string) => lockApp(trx, caps, appId),
    lockRole: (trx: Executor, roleId: string) => lockRole(trx, caps, roleId),
    lockDeployment: (trx: Executor, deploymentId: string) => lockDeployment(trx, caps, deploymentId),
    findDeploymentsByNamesLocked: (trx: Executor, orgId: string, names: string[]) => findDeploymentsByNames(trx, orgId, names, caps),
  });
}
