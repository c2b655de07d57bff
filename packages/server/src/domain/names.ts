/** Every name (org, user, role, app, deployment, subscription): unique in its scope, immutable. */
export const NAME_PATTERN = '^[A-Za-z0-9_]{2,50}$';
const NAME_RE = new RegExp(NAME_PATTERN);
/** The name rule in words, for error messages. */
export const NAME_RULE = '2 to 50 characters: letters A-Z a-z, digits and _';

export const isValidName = (name: string): boolean => NAME_RE.test(name);

/**
 * App names (decided, issue 13): like every name, plus `-` after the first character (`my-game`).
 * Every name valid before stays valid; other resources keep NAME_PATTERN.
 */
export const APP_NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_-]{1,49}$';
const APP_NAME_RE = new RegExp(APP_NAME_PATTERN);
export const isValidAppName = (name: string): boolean => APP_NAME_RE.test(name);
/** The app-name rule in words, for error messages. */
export const APP_NAME_RULE = '2 to 50 characters: letters A-Z a-z, digits, _ and - (not first)';
