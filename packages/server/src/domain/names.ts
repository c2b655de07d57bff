/** Every name (org, user, role, app, deployment, subscription): unique in its scope, immutable. */
export const NAME_PATTERN = '^[A-Za-z0-9_]{2,50}$';
const NAME_RE = new RegExp(NAME_PATTERN);

export const isValidName = (name: string): boolean => NAME_RE.test(name);
