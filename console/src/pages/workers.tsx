// The workers: a cluster's members (GET /api/v1/workers), or this one node's worker.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';
import type { WorkerStats } from '../types.js';
import { Generic } from './generic.js';

export function Workers() {
  const [cluster, setCluster] = useState<unknown>(undefined);
  const [single, setSingle] = useState<WorkerStats | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const load = () =>
      api<unknown>('/workers').then(setCluster, (e: ApiError) => {
        if (e.status !== 404) return setError(e.message);
        setCluster(null);
        api<WorkerStats>('/worker').then(setSingle, (err: Error) => setError(err.message));
      });
    void load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, []);
  if (error) return <p class="error">{error}</p>;
  return (
    <section>
      <h2>Workers</h2>
      {cluster ? (
        <Generic value={cluster} />
      ) : single ? (
        <>
          <p>
            One node: worker <code>{single.id}</code>, memory reserved {single.memory.reservedMb} of {single.memory.budgetMb} MB
            {single.memory.waiting ? `, ${single.memory.waiting} waiting` : ''}.
          </p>
          <Generic title="Functions held" value={single.functions} />
        </>
      ) : (
        <p>Loading…</p>
      )}
    </section>
  );
}
