import { describe, expect, it } from 'vitest';
import { createProgress, formatEta } from './progress.js';

function sink(isTTY: boolean) {
  const out: string[] = [];
  return { out, stream: { isTTY, write: (s: string) => out.push(s) } };
}

describe('progress', () => {
  it('on a terminal: a bar with rate and ETA', () => {
    let t = 0;
    const { out, stream } = sink(true);
    const p = createProgress({ label: 'upload', total: 4 * 1024 * 1024, stream, now: () => t });
    t = 2000;
    p.update(1024 * 1024);
    expect(out.at(-1)).toMatch(/^\rupload \[#{8}-{22}\] 25\.0% 1\.0 MiB \/ 4\.0 MiB 512\.0 KiB\/s ETA 0:06 {3}$/);
    p.done();
    expect(out.at(-1)).toBe('\n');
  });

  it('not a terminal (CI logs): one plain line every few seconds, none at the end, nothing with json', () => {
    let t = 0;
    const { out, stream } = sink(false);
    const p = createProgress({ label: 'mkraw t_1', total: 100, unit: 'items', stream, now: () => t, lineIntervalMs: 5000 });
    for (let i = 1; i <= 12; i++) {
      t = i * 1000;
      p.update(i * 5);
    }
    p.done();
    expect(out).toEqual(['mkraw t_1 25.0% ETA 0:15\n', 'mkraw t_1 50.0% ETA 0:10\n']);
    const quiet = sink(false);
    const j = createProgress({ label: 'upload', total: 10, json: true, stream: quiet.stream, now: () => t });
    t += 60_000;
    j.update(5);
    j.done();
    expect(quiet.out).toEqual([]);
  });

  it('formats an ETA', () => {
    expect([formatEta(0), formatEta(59.4), formatEta(61), formatEta(3725)]).toEqual(['0:00', '0:59', '1:01', '1:02:05']);
  });
});
