import { Type, type TInteger, type TObject, type TOptional, type Static } from '@sinclair/typebox';

/** The 12 resources of spec/api.md §2.3 and the maximum of each (= every bit the resource has). */
export const RESOURCE_MAX = {
  apps: 15,
  beUsers: 15,
  bundles: 15,
  consumption: 2,
  dependencies: 15,
  deployments: 15,
  keys: 15,
  roles: 15,
  sources: 15,
  subscriptions: 15,
  tasks: 31,
  trainings: 6,
} as const;

export type Resource = keyof typeof RESOURCE_MAX;
export const RESOURCES = Object.keys(RESOURCE_MAX) as Resource[];

// Built from RESOURCES at run time, so the static shape is stated here: one integer per resource.
export const PermissionsSchema = Type.Object(
  Object.fromEntries(RESOURCES.map((r) => [r, Type.Integer({ minimum: 0, maximum: RESOURCE_MAX[r], description: `bits; max ${RESOURCE_MAX[r]}` })])),
  { description: 'bitmask per resource: Create 1, Read 2, Update 4, Delete 8, eXecute 16' },
) as TObject<Record<Resource, TInteger>>;

/** Request form: partial, values validated against each resource's bits by the service (invalid-param). */
export const PermissionsInput = Type.Partial(
  Type.Object(Object.fromEntries(RESOURCES.map((r) => [r, Type.Integer({ minimum: 0, maximum: RESOURCE_MAX[r] })]))),
  { additionalProperties: false },
) as TObject<Record<Resource, TOptional<TInteger>>>;

/** A complete permission set as answered: every resource present. */
export type PermissionsDto = Static<typeof PermissionsSchema>;
