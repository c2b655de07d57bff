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
  /** Formats the amounts; default: bytes with binary units. 'items': a percentage only. */
  unit?: 'bytes' | 'items';
  /** Where to draw (default process.stderr); a terminal gets a bar, anything else a line now and then. */
  stream?: { write(s: string): unknown; isTTY?: boolean };
  /** Clock (tests). */
  now?: () => number;
  /** Not a terminal: at most one line this often (default 5000 ms). */
  lineIntervalMs?: number;
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

/** `m:ss` or `h:mm:ss`, for an ETA. */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * A progress display on stderr. On a terminal: a bar redrawn in place (at most every 100 ms) with
 * the rate and an ETA. Elsewhere (CI logs): one plain line every `lineIntervalMs` (default 5 s), so
 * a long upload or build shows it is alive without flooding the log. Nothing with `json`.
 */
export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const now = opts.now ?? Date.now;
  const tty = stream.isTTY === true;
  const enabled = !opts.json;
  const lineInterval = opts.lineIntervalMs ?? 5000;
  let total = opts.total ?? 0;
  let last = 0;
  const started = now();
  let lastLine = started;
  const fmt = opts.unit === 'items' ? (n: number) => String(n) : formatBytes;
  const parts = (done: number, at: number): { frac: number; rate: string; eta: string; amounts: string } => {
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const secs = Math.max(0.001, (at - started) / 1000);
    const rate = opts.unit === 'items' ? '' : ` ${formatBytes(done / secs)}/s`;
    const eta = total > 0 && done > 0 && done < total ? ` ETA ${formatEta(((total - done) / done) * secs)}` : '';
    const amounts = opts.unit === 'items' ? '' : `${fmt(done)}${total > 0 ? ' / ' + fmt(total) : ''}`;
    return { frac, rate, eta, amounts };
  };
  const draw = (done: number, force: boolean) => {
    if (!enabled) return;
    const at = now();
    const p = parts(done, at);
    const pct = total > 0 ? `${(p.frac * 100).toFixed(1)}% ` : '';
    if (tty) {
      if (!force && at - last < 100) return;
      last = at;
      const width = 30;
      const filled = Math.round(p.frac * width);
      const bar = total > 0 ? `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct}` : '';
      stream.write(`\r${opts.label} ${bar}${p.amounts}${p.rate}${p.eta}   `);
      return;
    }
    if (force || at - lastLine < lineInterval) return;
    lastLine = at;
    stream.write(`${opts.label} ${pct}${p.amounts}${p.rate}${p.eta}`.replace(/ {2,}/g, ' ').trimEnd() + '\n');
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
      if (enabled && tty) stream.write('\n');
    },
  };
}
