// Renders an API answer whose shape this console does not fix (the queue, cluster
// members): arrays of objects become tables, other values key/value lists.

function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function Generic(props: { value: unknown; title?: string }) {
  const v = props.value;
  if (Array.isArray(v)) {
    if (v.length === 0) return <p class="hint">{props.title ? `${props.title}: ` : ''}none</p>;
    const cols = [...new Set(v.flatMap((r) => (r && typeof r === 'object' ? Object.keys(r as object) : [])))];
    return (
      <>
        {props.title && <h3>{props.title}</h3>}
        <table>
          <thead>
            <tr>{cols.map((c) => <th key={c}>{c}</th>)}</tr>
          </thead>
          <tbody>
            {v.map((r, i) => (
              <tr key={i}>{cols.map((c) => <td key={c}>{cell((r as Record<string, unknown>)[c])}</td>)}</tr>
            ))}
          </tbody>
        </table>
      </>
    );
  }
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    const scalars = entries.filter(([, x]) => !Array.isArray(x));
    const lists = entries.filter(([, x]) => Array.isArray(x));
    return (
      <>
        {props.title && <h3>{props.title}</h3>}
        {scalars.length > 0 && (
          <dl>
            {scalars.map(([k, x]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd>{cell(x)}</dd>
              </div>
            ))}
          </dl>
        )}
        {lists.map(([k, x]) => (
          <Generic key={k} title={k} value={x} />
        ))}
      </>
    );
  }
  return <p>{cell(v)}</p>;
}
