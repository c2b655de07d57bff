// The permission matrix of a role: resources × CRUDX (api.md §2.3). A bit the resource does not
// have (beyond its documented maximum) cannot be ticked; a read-only matrix (Administrators) cannot
// be changed at all; a bit the signed-in user does not hold cannot be granted (no escalation).

export const BITS: Array<[number, string, string]> = [
  [1, 'C', 'create'],
  [2, 'R', 'read'],
  [4, 'U', 'update'],
  [8, 'D', 'delete'],
  [16, 'X', 'execute'],
];

/** `value` with every resource clamped to its maximum (bits outside it dropped). */
export function clampToMaxima(value: Record<string, number>, maxima: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(maxima).map((r) => [r, (value[r] ?? 0) & maxima[r]]));
}

export function MatrixEditor(props: {
  value: Record<string, number>;
  maxima: Record<string, number>;
  /** What the signed-in user holds: only these bits can be granted. Default: the maxima. */
  held?: Record<string, number>;
  readOnly?: boolean;
  onChange?: (next: Record<string, number>) => void;
  caption?: string;
}) {
  const { value, maxima, readOnly } = props;
  const held = props.held ?? maxima;
  const resources = Object.keys(maxima);
  const toggle = (r: string, bit: number, on: boolean) => {
    const cur = value[r] ?? 0;
    const next = on ? cur | bit : cur & ~bit;
    props.onChange?.(clampToMaxima({ ...value, [r]: next }, maxima));
  };
  return (
    <table className="matrix" aria-label={props.caption ?? 'Permissions'}>
      <caption>{props.caption ?? 'Permissions'}{readOnly ? ' (read-only)' : ''}</caption>
      <thead>
        <tr>
          <th scope="col">Resource</th>
          {BITS.map(([bit, letter, word]) => <th scope="col" key={bit} title={word}><abbr title={word}>{letter}</abbr></th>)}
          <th scope="col">Value</th>
        </tr>
      </thead>
      <tbody>
        {resources.map((r) => (
          <tr key={r}>
            <th scope="row">{r}</th>
            {BITS.map(([bit, , word]) => {
              const allowed = (maxima[r] & bit) === bit;
              const grantable = (held[r] & bit) === bit;
              const checked = ((value[r] ?? 0) & bit) === bit;
              return (
                <td key={bit}>
                  {allowed ? (
                    <input
                      type="checkbox"
                      aria-label={`${r} ${word}`}
                      checked={checked}
                      disabled={readOnly || (!grantable && !checked)}
                      onChange={(e) => toggle(r, bit, e.target.checked)}
                    />
                  ) : (
                    <span aria-label={`${r} has no ${word}`} className="na">–</span>
                  )}
                </td>
              );
            })}
            <td><output aria-label={`${r} value`}>{value[r] ?? 0}</output></td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
