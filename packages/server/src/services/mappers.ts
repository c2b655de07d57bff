import type { OrgDto, RoleDto, TaskDto, UserDto } from '@rockit/contract';
import type { OrgRow, RoleRow, TaskRow } from '../db/database.js';
import type { UserDtoRow } from '../db/repositories/user.repository.js';
import { toUnixSeconds } from '../domain/clock.js';
import { noPermissions, RESOURCES, type Permissions } from '../domain/permissions.js';

/** Explicit DTO mappers: the only way rows leave the service layer (never hashes, never ids of rows). The DTO types come from the API's schemas (@rockit/contract). */

export const toOrgDto = (r: OrgRow): OrgDto => ({
  name: r.name,
  label: r.label,
  created: toUnixSeconds(r.created_ms),
  updated: toUnixSeconds(r.updated_ms),
});

export function parsePermissions(json: string): Permissions {
  const stored = JSON.parse(json) as Partial<Permissions>;
  const out = noPermissions();
  for (const r of RESOURCES) out[r] = stored[r] ?? 0;
  return out;
}

/**
 * The union (bitwise OR, spec §2.3) of roles' stored permission texts, parsed in one pass into one
 * object: the principal of every authenticated request is built with it from the roles just read.
 */
export function unionOfStored(roles: Iterable<{ permissions: string }>): Permissions {
  const out = noPermissions();
  for (const role of roles) {
    const stored = JSON.parse(role.permissions) as Partial<Permissions>;
    for (const r of RESOURCES) out[r] |= stored[r] ?? 0;
  }
  return out;
}

export const toRoleDto = (r: RoleRow & { users: number }): RoleDto => ({
  name: r.name,
  label: r.label,
  permissions: parsePermissions(r.permissions),
  users: r.users,
  created: toUnixSeconds(r.created_ms),
  updated: toUnixSeconds(r.updated_ms),
});

export function toUserDto(r: UserDtoRow, roles: string[]): UserDto {
  const dto: UserDto = {
    username: r.username,
    type: r.type,
    roles,
    disabled: Number(r.disabled) !== 0,
    created: toUnixSeconds(r.created_ms),
    updated: toUnixSeconds(r.updated_ms),
  };
  if (r.email !== null) dto.email = r.email;
  if (r.firstname !== null) dto.firstname = r.firstname;
  if (r.surname !== null) dto.surname = r.surname;
  if (r.title !== null) dto.title = r.title;
  if (r.label !== null) dto.label = r.label;
  if (r.last_login_ms !== null) dto.lastLogin = toUnixSeconds(r.last_login_ms);
  return dto;
}

export const toTaskDto = (r: TaskRow): TaskDto => ({
  name: r.name,
  type: r.type,
  status: r.status,
  appName: r.app_name,
  buildId: r.build_id,
  progress: Number(r.progress),
  attempts: Number(r.attempts),
  warnings: JSON.parse(r.warnings),
  error: r.error === null ? null : JSON.parse(r.error),
  result: r.result === null ? null : JSON.parse(r.result),
  created: toUnixSeconds(r.created_ms),
  started: r.started_ms === null ? null : toUnixSeconds(r.started_ms),
  ended: r.ended_ms === null ? null : toUnixSeconds(r.ended_ms),
});

/** Why a locked app refuses a change: a failed deploy (retry it), or a lock set by hand (unlock it). */
export function lockedMessage(appName: string, failedDeploy: boolean): string {
  return failedDeploy
    ? `app '${appName}' is locked after a failed deploy: fix the deployment and retry the task`
    : `app '${appName}' is locked: unlock it (PATCH /be/v1/apps with "locked": false) first`;
}
