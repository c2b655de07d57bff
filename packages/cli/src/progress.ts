// A minimal terminal progress bar. Draws on stderr only when it is a TTY and --json is off,
// so machine-readable output on stdout is never mixed with drawing.

export interface Progress {
  /** Set absolute progress: done out of total (same unit, e.g. bytes). */
  update(done: number, total?: number): void;
  /** Finish the bar and move to a new line. */
  done(): void;
}

export interface ProgressOptions {
  label: string;
  total?: number;
  json?: boolean;
  /** Formats the amounts; default: bytes with binary units. */
  unit?: 'bytes' | 'items';
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = process.stderr;
  const enabled = !opts.json && stream.isTTY === true;
  let total = opts.total ?? 0;
  let last = 0;
  const started = Date.now();
  const fmt = opts.unit === 'items' ? (n: number) => String(n) : formatBytes;
  const draw = (done: number, force: boolean) => {
    if (!enabled) return;
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    const width = 30;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const filled = Math.round(frac * width);
    const secs = Math.max(0.001, (now - started) / 1000);
    const rate = opts.unit === 'items' ? '' : ` ${formatBytes(done / secs)}/s`;
    const bar = total > 0 ? `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(frac * 100).toFixed(1)}% ` : '';
    stream.write(`\r${opts.label} ${bar}${fmt(done)}${total > 0 ? ' / ' + fmt(total) : ''}${rate}   `);
  };
  let current = 0;
  return {
    update(done, t) {
      if (t !== undefined) total = t;
      current = done;
      draw(done, false);
    },
    done() {
      draw(current, true);
      if (enabled) stream.write('\n');
    },
  };
}
