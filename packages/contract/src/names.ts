/** Every name (org, user, role, app, deployment, subscription): unique in its scope, immutable. */
export const NAME_PATTERN = '^[A-Za-z0-9_]{2,50}$';
/** The name rule in words, for error messages. */
export const NAME_RULE = '2 to 50 characters: letters A-Z a-z, digits and _';

/**
 * App names (decided, issue 13): like every name, plus `-` after the first character (`my-game`).
 * Every name valid before stays valid; other resources keep NAME_PATTERN.
 */
export const APP_NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_-]{1,49}$';
/** The app-name rule in words, for error messages. */
export const APP_NAME_RULE = '2 to 50 characters: letters A-Z a-z, digits, _ and - (not first)';
