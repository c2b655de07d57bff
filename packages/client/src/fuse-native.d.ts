// Minimal typings for fuse-native 2.2.6 (the package ships none): only what fuse-mount.ts uses.
declare module 'fuse-native' {
  type Cb = (code: number, ...rest: unknown[]) => void;
  interface Ops {
    readdir?: (path: string, cb: (code: number, names?: string[]) => void) => void;
    getattr?: (path: string, cb: (code: number, stat?: object) => void) => void;
    open?: (path: string, flags: number, cb: (code: number, fd?: number) => void) => void;
    release?: (path: string, fd: number, cb: (code: number) => void) => void;
    read?: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrCode: number) => void) => void;
    readlink?: (path: string, cb: (code: number, target?: string) => void) => void;
    statfs?: (path: string, cb: Cb) => void;
  }
  class Fuse {
    constructor(mnt: string, ops: Ops, opts?: { debug?: boolean; force?: boolean; mkdir?: boolean; displayFolder?: string; autoUnmount?: boolean });
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    static ENOENT: number;
    static EIO: number;
    static EROFS: number;
    static EACCES: number;
    static EINVAL: number;
  }
  export default Fuse;
}
