/**
 * The wire contract of the ROCKIT Edge HTTP API (spec/api.md): TypeBox schemas of request bodies and
 * responses, and the static types derived from them. The server validates and serializes with these
 * schemas (they make its OpenAPI document); services return the types; the CLI reads the types
 * (type-only imports). This package imports nothing of ours.
 */
export * from './names.js';
export * from './permissions.js';
export * from './common.js';
export * from './accounts.schemas.js';
export * from './tasks.schemas.js';
export * from './apps.schemas.js';
export * from './deployments.schemas.js';
export * from './builds.schemas.js';
export * from './subscriptions.schemas.js';
export * from './keys.schemas.js';
export * from './trainings.schemas.js';
