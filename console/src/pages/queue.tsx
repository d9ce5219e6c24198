// The async queue and schedules, from GET /api/v1/queue when the server has it.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';
import { throttle, useLive } from '../live.js';
import { Generic } from './generic.js';

export function Queue() {
  const [state, setState] = useState<{ value?: unknown; missing?: boolean; error?: string } | null>(null);
  const refresh = useMemo(
    () => () =>
      api<unknown>('/queue').then(
        (value) => setState({ value }),
        (e: ApiError) => setState(e.status === 404 ? { missing: true } : { error: e.message }),
      ),
    [],
  );
  const soon = useMemo(() => throttle(refresh, 2000), [refresh]);
  useEffect(() => void refresh(), [refresh]);
  useLive(() => soon(), [soon]);
  return (
    <section>
      <h2>Async queue and schedules</h2>
      {!state && <p>Loading…</p>}
      {state?.missing && <p data-testid="queue-missing">Not available: this server has no async queue API (GET /api/v1/queue).</p>}
      {state?.error && <p class="error">{state.error}</p>}
      {state?.value !== undefined && <Generic value={state.value} />}
    </section>
  );
}
