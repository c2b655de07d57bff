import { APP_NAME_PATTERN, NAME_PATTERN } from '@rockit/contract';

// The patterns are part of the wire contract (the schemas carry them); the checks live here.
export { APP_NAME_PATTERN, APP_NAME_RULE, NAME_PATTERN, NAME_RULE } from '@rockit/contract';

const NAME_RE = new RegExp(NAME_PATTERN);
/** Every name (org, user, role, app, deployment, subscription): unique in its scope, immutable. */
export const isValidName = (name: string): boolean => NAME_RE.test(name);

const APP_NAME_RE = new RegExp(APP_NAME_PATTERN);
/** App names (decided, issue 13): like every name, plus `-` after the first character (`my-game`). */
export const isValidAppName = (name: string): boolean => APP_NAME_RE.test(name);
