import { RESOURCE_MAX, RESOURCES, type Resource } from '@rockit/contract';
import { invalidParam } from './errors.js';

// The resources and their maxima are part of the wire contract (the role schemas carry them).
export { RESOURCE_MAX, RESOURCES, type Resource };

/** Permission bits of spec/api.md §2.3. */
export const Bit = { create: 1, read: 2, update: 4, delete: 8, execute: 16 } as const;
export type Action = keyof typeof Bit;

/** A complete permission set: every resource present. */
export type Permissions = Record<Resource, number>;

/** Every resource at 0 (a plain loop: this runs on every authenticated request). */
export function noPermissions(): Permissions {
  const out = {} as Permissions;
  for (const r of RESOURCES) out[r] = 0;
  return out;
}

export const allPermissions = (): Permissions => ({ ...RESOURCE_MAX });

/**
 * The name a refused permission carries in `403 forbidden` (`permission` field). The pages name
 * beUsers `users.*` and tasks eXecute `trigger.create`; the rest are `<resource>.<action>`.
 */
export function permissionName(resource: Resource, action: Action): string {
  if (resource === 'tasks' && action === 'execute') return 'trigger.create';
  return `${resource === 'beUsers' ? 'users' : resource}.${action}`;
}

export const hasPermission = (perms: Permissions, resource: Resource, action: Action): boolean =>
  (perms[resource] & Bit[action]) !== 0;

/** Bitwise OR over roles (spec §2.3). */
export function unionPermissions(sets: Iterable<Partial<Permissions>>): Permissions {
  const out = noPermissions();
  for (const s of sets) for (const r of RESOURCES) out[r] |= s[r] ?? 0;
  return out;
}

export const isFull = (perms: Permissions, resource: Resource): boolean =>
  (perms[resource] & RESOURCE_MAX[resource]) === RESOURCE_MAX[resource];

/**
 * Validates a (partial) permissions object from a request: only known resources, integer values
 * with no bit outside the resource's maximum. Throws invalid-param naming `permissions.<resource>`.
 */
export function validatePermissions(input: Record<string, unknown>): Partial<Permissions> {
  const out: Partial<Permissions> = {};
  for (const [key, value] of Object.entries(input)) {
    if (!(key in RESOURCE_MAX)) throw invalidParam(`permissions.${key}`, 'is not a resource');
    const max = RESOURCE_MAX[key as Resource];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || (value & ~max) !== 0) {
      throw invalidParam(`permissions.${key}`, `must be an integer using only the bits of ${max}`);
    }
    out[key as Resource] = value;
  }
  return out;
}

/**
 * The first bit of `grant` that `holder` lacks, as (resource, action); undefined when `holder`
 * covers every bit of `grant` (the no-escalation rule of spec §2.3).
 */
export function firstUncovered(holder: Permissions, grant: Partial<Permissions>): { resource: Resource; action: Action } | undefined {
  for (const resource of RESOURCES) {
    const missing = (grant[resource] ?? 0) & ~holder[resource];
    if (missing === 0) continue;
    const action = (Object.keys(Bit) as Action[]).find((a) => (missing & Bit[a]) !== 0)!;
    return { resource, action };
  }
  return undefined;
}
