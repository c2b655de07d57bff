// Hand-made SVG charts (no chart library): labelled bars with their values, readable without colour.

export interface Bar {
  label: string;
  value: number;
}

export function BarChart({ title, bars, format, height = 180 }: { title: string; bars: Bar[]; format: (n: number) => string; height?: number }) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const w = 560;
  const top = 20;
  const bottom = 34;
  const left = 8;
  const slot = (w - left * 2) / Math.max(1, bars.length);
  const barW = Math.min(56, slot * 0.7);
  const plotH = height - top - bottom;
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${w} ${height}`} role="img" aria-label={`${title}: ${bars.map((b) => `${b.label} ${format(b.value)}`).join(', ')}`}>
        <line x1={left} x2={w - left} y1={top + plotH} y2={top + plotH} className="axis" />
        {bars.map((b, i) => {
          const h = (b.value / max) * plotH;
          const x = left + i * slot + (slot - barW) / 2;
          return (
            <g key={b.label}>
              <rect x={x} y={top + plotH - h} width={barW} height={Math.max(h, b.value > 0 ? 1 : 0)} className="bar" />
              <text x={x + barW / 2} y={top + plotH - h - 4} textAnchor="middle" className="value">{format(b.value)}</text>
              <text x={x + barW / 2} y={height - 12} textAnchor="middle" className="label">{b.label}</text>
            </g>
          );
        })}
      </svg>
      <figcaption>{title}</figcaption>
    </figure>
  );
}
