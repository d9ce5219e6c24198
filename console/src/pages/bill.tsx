// The bill: usage and cost per function over a chosen window.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from '../api.js';
import { money } from '../format.js';
import { throttle, useLive } from '../live.js';
import type { BillingReport } from '../types.js';

const WINDOWS: Record<string, number | null> = { 'last hour': 3600_000, 'last day': 86400_000, 'last 30 days': 30 * 86400_000, 'all time': null };

export function Bill() {
  const [windowName, setWindow] = useState('last day');
  const [bill, setBill] = useState<BillingReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const refresh = useMemo(
    () => () => {
      const span = WINDOWS[windowName];
      const q = span ? `?since=${encodeURIComponent(new Date(Date.now() - span).toISOString())}` : '';
      api<BillingReport>(`/billing${q}`).then(setBill, (e: Error) => setError(e.message));
    },
    [windowName],
  );
  const soon = useMemo(() => throttle(refresh, 2000), [refresh]);
  useEffect(refresh, [refresh]);
  useLive(() => soon(), [soon]);
  if (error) return <p class="error">{error}</p>;
  if (!bill) return <p>Loading…</p>;
  const row = (name: string, l: BillingReport['total']) => (
    <tr key={name}>
      <td>{name}</td>
      <td class="num">{l.invocations}</td>
      <td class="num">{l.errors}</td>
      <td class="num">{l.coldStarts}</td>
      <td class="num">{l.billedMs}</td>
      <td class="num">{l.gbSeconds.toFixed(6)}</td>
      <td class="num">{money(l.cost.total)}</td>
    </tr>
  );
  return (
    <section>
      <h2>Bill</h2>
      <label>
        Window{' '}
        <select value={windowName} onChange={(e) => setWindow((e.target as HTMLSelectElement).value)}>
          {Object.keys(WINDOWS).map((k) => (
            <option key={k}>{k}</option>
          ))}
        </select>
      </label>
      <table data-testid="bill">
        <thead>
          <tr>
            <th>Function</th>
            <th class="num">Calls</th>
            <th class="num">Errors</th>
            <th class="num">Cold starts</th>
            <th class="num">Billed ms</th>
            <th class="num">GB-seconds</th>
            <th class="num">Cost</th>
          </tr>
        </thead>
        <tbody>
          {bill.functions.map((f) => row(f.function, f))}
          {row('Total', bill.total)}
        </tbody>
      </table>
      <p class="hint">
        ${bill.prices.perGbSecond} per GB-second, ${bill.prices.perRequest} per request; durations rounded up to {bill.granularityMs} ms.
      </p>
    </section>
  );
}
