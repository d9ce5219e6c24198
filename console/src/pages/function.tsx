// One function: configuration, versions with rollback, an invoke form, charts
// of the last hour, and its recent calls with their logs, updated live.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, invoke, type InvokeAnswer } from '../api.js';
import { dateTime, errorOf, ms, time } from '../format.js';
import { throttle, useLive } from '../live.js';
import type { Bucket, FunctionDetail, InvocationRecord } from '../types.js';
import { Chart } from './chart.js';

const RECENT = 50;

function CallRow(props: { r: InvocationRecord }) {
  const r = props.r;
  const [open, setOpen] = useState(false);
  const [logs, setLogs] = useState<string | null>(r.logs ?? null);
  const toggle = async () => {
    setOpen(!open);
    if (logs === null) {
      const full = await api<InvocationRecord>(`/invocations/${encodeURIComponent(r.requestId)}`);
      setLogs(full.logs ?? '');
    }
  };
  const failed = r.status !== 'Success';
  const err = errorOf(logs ?? undefined);
  return (
    <>
      <tr class={`call ${failed ? 'bad' : ''}`} data-request-id={r.requestId} onClick={toggle}>
        <td>{time(r.startedAt)}</td>
        <td>
          <code>{r.requestId.slice(0, 8)}</code>
        </td>
        <td data-col="status">{r.status}</td>
        <td class="num">{ms(r.durationMs)}</td>
        <td class="num">{r.billedMs} ms</td>
        <td class="num">
          {Math.round(r.maxMemoryMb)} / {r.memoryMb} MB
        </td>
        <td>{r.cold ? `cold (init ${ms(r.initMs)})` : 'warm'}</td>
        <td>v{r.version}</td>
      </tr>
      {open && (
        <tr class="logs">
          <td colSpan={8}>
            {failed && err && (
              <p class="error" data-testid="call-error">
                {err}
              </p>
            )}
            <pre data-testid="call-logs">{logs ?? 'loading…'}</pre>
          </td>
        </tr>
      )}
    </>
  );
}

function InvokeForm(props: { name: string; onDone: () => void }) {
  const [body, setBody] = useState('{}');
  const [answer, setAnswer] = useState<InvokeAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      JSON.parse(body);
    } catch (err) {
      return setError(`The event is not valid JSON: ${(err as Error).message}`);
    }
    try {
      setAnswer(await invoke(props.name, body));
    } catch (err) {
      setError((err as Error).message);
    }
    // The live stream may not be connected yet (a page just opened), so the call is fetched too.
    props.onDone();
  };
  let pretty = answer?.body ?? '';
  try {
    pretty = JSON.stringify(JSON.parse(pretty), null, 2);
  } catch {
    // not JSON: shown as it came
  }
  return (
    <form class="invoke" onSubmit={submit}>
      <label>
        Event (JSON)
        <textarea name="event" rows={5} value={body} onInput={(e) => setBody((e.target as HTMLTextAreaElement).value)} />
      </label>
      <button type="submit">Invoke</button>
      {error && <p class="error">{error}</p>}
      {answer && (
        <div class="answer" data-testid="invoke-answer">
          <p>
            <strong data-testid="invoke-status">HTTP {answer.status}</strong>{' '}
            {Object.entries(answer.headers).map(([k, v]) => (
              <span key={k} class="hdr">
                {k.replace('x-lamina-', '')}: {v}
              </span>
            ))}
          </p>
          <pre data-testid="invoke-body">{pretty}</pre>
        </div>
      )}
    </form>
  );
}

function mergeCalls(a: InvocationRecord[], b: InvocationRecord[]): InvocationRecord[] {
  const byId = new Map(a.map((r) => [r.requestId, r]));
  for (const r of b) byId.set(r.requestId, r);
  return [...byId.values()].sort((x, y) => (x.startedAt < y.startedAt ? 1 : x.startedAt > y.startedAt ? -1 : 0)).slice(0, RECENT);
}

export function FunctionPage(props: { name: string }) {
  const name = props.name;
  const [detail, setDetail] = useState<FunctionDetail | null>(null);
  const [calls, setCalls] = useState<InvocationRecord[]>([]);
  const [buckets, setBuckets] = useState<Bucket[]>([]);
  const [error, setError] = useState<string | null>(null);
  const enc = encodeURIComponent(name);

  const loadDetail = useMemo(() => () => api<FunctionDetail>(`/functions/${enc}`).then(setDetail, (e: Error) => setError(e.message)), [enc]);
  // Merged with what is shown: a live record that arrives while the list is fetched is kept.
  const loadCalls = useMemo(
    () => () => api<{ invocations: InvocationRecord[] }>(`/invocations?function=${enc}&limit=${RECENT}`).then((r) => setCalls((old) => mergeCalls(old, r.invocations)), () => undefined),
    [enc],
  );
  const loadStats = useMemo(() => () => api<{ buckets: Bucket[] }>(`/functions/${enc}/stats?minutes=60`).then((r) => setBuckets(r.buckets), () => undefined), [enc]);
  const soon = useMemo(() => throttle(() => void (loadStats(), loadDetail()), 2000), [loadStats, loadDetail]);

  useEffect(() => {
    setDetail(null);
    setCalls([]);
    setError(null);
    void loadDetail();
    void loadCalls();
    void loadStats();
  }, [loadDetail, loadCalls, loadStats]);

  useLive(
    (m) => {
      if (m.event === 'ready') {
        // (Re)connected: whatever was published while the stream was down is read again.
        void loadCalls();
        void loadDetail();
      } else if (m.event === 'invocation') {
        const r = m.data as InvocationRecord;
        if (r.function !== name) return;
        setCalls((old) => (old.some((c) => c.requestId === r.requestId) ? old : [r, ...old].slice(0, RECENT)));
        soon();
      } else if ((m.data as { name?: string }).name === name) {
        void loadDetail();
      }
    },
    [name, soon, loadDetail, loadCalls],
  );

  const rollback = async (version: number) => {
    if (!confirm(`Make version ${version} of ${name} current again (as a new version)?`)) return;
    try {
      await api(`/functions/${enc}/rollback`, { method: 'POST', body: { version } });
      await loadDetail();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  const xs = useMemo(() => buckets.map((b) => b.t), [buckets]);
  const volume = useMemo(
    () => [
      { label: 'calls', color: '#2563eb', values: buckets.map((b) => b.calls) },
      { label: 'errors', color: '#dc2626', values: buckets.map((b) => b.errors) },
    ],
    [buckets],
  );
  const latency = useMemo(
    () => [
      { label: 'p50', color: '#16a34a', values: buckets.map((b) => b.p50) },
      { label: 'p99', color: '#ea580c', values: buckets.map((b) => b.p99) },
    ],
    [buckets],
  );

  if (error && !detail) return <p class="error">{error}</p>;
  if (!detail) return <p>Loading…</p>;
  const m = detail.manifest;
  return (
    <section>
      <p>
        <a href="#/">← Functions</a>
      </p>
      <h2 data-testid="function-name">
        {name} <small>version {detail.version}</small>
      </h2>
      {error && <p class="error">{error}</p>}
      <p>
        {m.runtime} · {detail.instances[0]?.tier ?? m.sandbox} · {m.memoryMb} MB · timeout {m.timeoutMs / 1000} s · {detail.instances.length} live instance
        {detail.instances.length === 1 ? '' : 's'}
      </p>
      <div class="grid">
        <div>
          <h3>Invoke</h3>
          <InvokeForm name={name} onDone={loadCalls} />
        </div>
        <div>
          <h3>Last hour</h3>
          <Chart title="Calls and errors per minute" xs={xs} series={volume} />
          <Chart title="Duration p50 / p99" xs={xs} series={latency} unit=" ms" />
        </div>
      </div>
      <h3>Recent calls</h3>
      {calls.length === 0 ? (
        <p class="hint">No calls yet.</p>
      ) : (
        <table data-testid="calls">
          <thead>
            <tr>
              <th>Time</th>
              <th>Request</th>
              <th>Status</th>
              <th class="num">Duration</th>
              <th class="num">Billed</th>
              <th class="num">Memory</th>
              <th>Start</th>
              <th>Version</th>
            </tr>
          </thead>
          <tbody>
            {calls.map((r) => (
              <CallRow key={r.requestId} r={r} />
            ))}
          </tbody>
        </table>
      )}
      <div class="grid">
        <div>
          <h3>Versions</h3>
          <table data-testid="versions">
            <thead>
              <tr>
                <th>Version</th>
                <th>Code</th>
                <th>Deployed</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {[...detail.versions].reverse().map((v) => (
                <tr key={v.version}>
                  <td>{v.version}</td>
                  <td>
                    <code>{v.codeHash.slice(0, 12)}</code>
                  </td>
                  <td>{dateTime(v.createdAt)}</td>
                  <td>
                    {v.version === detail.version ? (
                      <strong>current</strong>
                    ) : (
                      <button type="button" onClick={() => rollback(v.version)}>
                        Roll back to {v.version}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div>
          <h3>Configuration</h3>
          <pre data-testid="manifest">{JSON.stringify(m, null, 2)}</pre>
        </div>
      </div>
    </section>
  );
}
