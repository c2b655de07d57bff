// One error family for the launcher library. `code` is stable (launchers switch on it); `resumable` says that
// running the same command again continues where this one stopped (nothing was lost).

export type ClientErrorCode =
  | 'not-installed' // the folder holds no install state
  | 'folder-not-empty' // install into a folder that holds something else
  | 'locked' // another launcher works on this folder
  | 'key-required' // the app has download keys and none was given
  | 'key-rejected' // wrong, expired or revoked key / token
  | 'server-unavailable' // network or server errors after retries
  | 'release-invalid' // release.json is missing or malformed
  | 'disk-full' // no space left on the install's file system
  | 'origin-corrupt' // the origin keeps serving damaged bytes
  | 'outdated' // the installed build is no longer served (repair needs an update first)
  | 'invalid-argument';

export class ClientError extends Error {
  readonly code: ClientErrorCode;
  readonly resumable: boolean;
  constructor(code: ClientErrorCode, message: string, resumable = false) {
    super(message);
    this.name = 'ClientError';
    this.code = code;
    this.resumable = resumable;
  }
}

/** Bytes in a human unit (errors a player reads). */
export function humanBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[u]}`;
}

/** The disk of `dir` cannot hold what is left to write: names the folder and the space needed (resumable). */
export function diskFullError(dir: string, needBytes: number, freeBytes?: number): ClientError {
  const free = freeBytes === undefined ? '' : ` (${humanBytes(freeBytes)} free)`;
  return new ClientError('disk-full', `not enough space for ${dir}: ${humanBytes(needBytes)} more are needed${free}; free some space and run the command again (it resumes where it stopped)`, true);
}

export const isDiskFull = (err: unknown): boolean => {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
};

/** Maps file-system errors a player can act on to ClientErrors; returns other errors unchanged. */
export function asClientError(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new ClientError('disk-full', 'no space left on the install folder\'s disk: free some space and run the command again (the install resumes)', true);
  }
  return err;
}
