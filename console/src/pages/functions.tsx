// The function list: version, runtime, tier, live instances, and calls and errors in the last hour.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from '../api.js';
import { throttle, useLive } from '../live.js';
import type { BillingReport, FunctionSummary, WorkerStats } from '../types.js';

interface Row extends FunctionSummary {
  live: number;
  calls: number;
  errors: number;
}

async function load(): Promise<Row[]> {
  const since = new Date(Date.now() - 3600_000).toISOString();
  const [{ functions }, bill, stats] = await Promise.all([
    api<{ functions: FunctionSummary[] }>('/functions'),
    api<BillingReport>(`/billing?since=${encodeURIComponent(since)}`),
    api<WorkerStats>('/worker').catch(() => null),
  ]);
  return functions.map((f) => {
    const b = bill.functions.find((x) => x.function === f.name);
    const l = stats?.functions.find((x) => x.name === f.name);
    return { ...f, live: l ? l.starting + l.busy + l.idle + l.paused : 0, calls: b?.invocations ?? 0, errors: b?.errors ?? 0 };
  });
}

export function Functions() {
  const [rows, setRows] = useState<Row[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const refresh = useMemo(() => () => load().then(setRows, (e: Error) => setError(e.message)), []);
  const soon = useMemo(() => throttle(refresh, 1000), [refresh]);
  useEffect(() => void refresh(), [refresh]);
  useLive(() => soon(), [soon]);
  if (error) return <p class="error">{error}</p>;
  if (!rows) return <p>Loading…</p>;
  if (rows.length === 0) return <p>No functions deployed yet. Deploy one with <code>lamina deploy DIR</code>.</p>;
  return (
    <section>
      <h2>Functions</h2>
      <table data-testid="functions">
        <thead>
          <tr>
            <th>Name</th>
            <th>Version</th>
            <th>Runtime</th>
            <th>Tier</th>
            <th class="num">Live instances</th>
            <th class="num">Calls (1 h)</th>
            <th class="num">Errors (1 h)</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.name} data-function={r.name}>
              <td>
                <a href={`#/functions/${encodeURIComponent(r.name)}`}>{r.name}</a>
              </td>
              <td>{r.version}</td>
              <td>{r.runtime}</td>
              <td>{r.sandbox}</td>
              <td class="num">{r.live}</td>
              <td class="num" data-col="calls">{r.calls}</td>
              <td class={`num ${r.errors ? 'bad' : ''}`} data-col="errors">{r.errors}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
