import { timestampMs } from "@bufbuild/protobuf/wkt";
import { useEffect, useState } from "react";
import { useApi } from "../auth/AuthContext";
import { ServerIcon } from "../components/icons";
import { Alert, Card, CardHeader, EmptyState, PageHeader, Spinner } from "../components/ui";
import type { QueueStats, Worker } from "../gen/pixelflow/v1/worker_pb";
import { describeError } from "../lib/errors";
import { formatRelative } from "../lib/format";

/** The workers panel refreshes on a timer (unlike task status, which streams): see 0008. */
export const REFRESH_MS = 5000;

export function WorkersPage() {
  const api = useApi();
  const [workers, setWorkers] = useState<Worker[] | null>(null);
  const [stats, setStats] = useState<QueueStats | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [updatedAt, setUpdatedAt] = useState<number | null>(null);
  const [, setTick] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    async function load() {
      try {
        const [list, queue] = await Promise.all([
          api.workers.listWorkers({}, { signal: controller.signal }),
          api.workers.getQueueStats({}, { signal: controller.signal }),
        ]);
        setWorkers(list.workers);
        setStats(queue);
        setError(null);
        setUpdatedAt(Date.now());
      } catch (caught) {
        if (controller.signal.aborted) return;
        setError(describeError(caught));
      }
      if (!controller.signal.aborted) timer = setTimeout(load, document.hidden ? REFRESH_MS * 3 : REFRESH_MS);
    }
    void load();
    const clock = setInterval(() => setTick((n) => n + 1), 1000);
    return () => {
      controller.abort();
      clearTimeout(timer);
      clearInterval(clock);
    };
  }, [api]);

  return (
    <>
      <PageHeader
        title="Workers"
        description="The worker pool and the task queue."
        actions={
          <span className="text-xs text-slate-500" aria-live="polite">
            {updatedAt ? `Updated ${Math.max(0, Math.round((Date.now() - updatedAt) / 1000))} s ago · refreshes every ${REFRESH_MS / 1000} s` : "Loading…"}
          </span>
        }
      />
      {error && (
        <div className="mb-4">
          <Alert>{error}</Alert>
        </div>
      )}
      <section aria-label="Queue" className="mb-6 grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-6">
        <Stat label="Live workers" value={stats?.liveWorkers} />
        <Stat label="Pending" value={stats?.pending} accent="text-amber-700" />
        <Stat label="Processing" value={stats?.processing} accent="text-sky-700" />
        <Stat label="Consumer lag" value={stats?.consumerLag} />
        <Stat label="Done / min" value={stats?.completedLastMinute} accent="text-emerald-700" />
        <Stat label="Failed / min" value={stats?.failedLastMinute} accent={stats && stats.failedLastMinute > 0n ? "text-red-700" : undefined} />
      </section>
      <Card>
        <CardHeader title="Workers" description={stats ? `Throughput ${stats.throughputPerSecond.toFixed(2)} tasks/s over the last minute` : undefined} />
        {workers === null ? (
          <div className="flex items-center gap-2 px-5 py-10 text-sm text-slate-500" role="status">
            <Spinner className="h-4 w-4" /> Loading workers…
          </div>
        ) : workers.length === 0 ? (
          <EmptyState icon={<ServerIcon className="h-6 w-6" />} title="No live workers">
            <p>Start one with <code className="rounded bg-slate-100 px-1">python -m worker_svc</code>; tasks wait in the queue until then.</p>
          </EmptyState>
        ) : (
          <ul role="list" className="divide-y divide-slate-100">
            {workers.map((worker) => (
              <WorkerRow key={worker.id} worker={worker} />
            ))}
          </ul>
        )}
      </Card>
    </>
  );
}

function Stat({ label, value, accent = "text-slate-900" }: { label: string; value: bigint | number | undefined; accent?: string | undefined }) {
  return (
    <div className="rounded-xl bg-white p-4 shadow-sm ring-1 ring-slate-200">
      <p className="text-xs font-medium text-slate-500">{label}</p>
      <p className={`mt-1 text-2xl font-semibold tabular-nums ${accent}`}>{value === undefined ? "–" : String(value)}</p>
    </div>
  );
}

function WorkerRow({ worker }: { worker: Worker }) {
  const load = worker.capacity ? Math.min(1, worker.inFlight / worker.capacity) : 0;
  const heartbeatAge = worker.lastHeartbeat ? (Date.now() - timestampMs(worker.lastHeartbeat)) / 1000 : Infinity;
  return (
    <li data-testid="worker-row" className="grid grid-cols-1 gap-3 px-4 py-4 sm:grid-cols-[1fr_auto] sm:items-center sm:px-5">
      <div className="min-w-0">
        <div className="flex items-center gap-2">
          <span className={`h-2 w-2 shrink-0 rounded-full ${heartbeatAge < 15 ? "bg-emerald-500" : "bg-amber-500"}`} aria-hidden="true" />
          <p className="truncate font-mono text-sm font-medium text-slate-900" title={worker.id}>
            {worker.id}
          </p>
        </div>
        <p className="mt-0.5 truncate text-xs text-slate-500">
          {worker.host} · pid {worker.pid} · v{worker.version || "?"} · started {formatRelative(worker.startedAt)} · heartbeat {formatRelative(worker.lastHeartbeat)}
        </p>
      </div>
      <div className="flex items-center gap-5 text-sm">
        <div className="w-32">
          <div className="flex justify-between text-xs text-slate-500">
            <span>In flight</span>
            <span className="tabular-nums" data-testid="worker-load" title={`${worker.inFlight} of ${worker.capacity} slots busy`}>
              {worker.inFlight} of {worker.capacity}
            </span>
          </div>
          <div className="mt-1 h-1.5 overflow-hidden rounded-full bg-slate-100" role="meter" aria-label="Load" aria-valuemin={0} aria-valuemax={worker.capacity} aria-valuenow={worker.inFlight}>
            <div className="h-full rounded-full bg-indigo-500" style={{ width: `${load * 100}%` }} />
          </div>
        </div>
        <div className="text-right">
          <p className="text-xs text-slate-500">Processed</p>
          <p className="font-semibold tabular-nums text-slate-900">{String(worker.processed)}</p>
        </div>
        <div className="text-right">
          <p className="text-xs text-slate-500">Failed</p>
          <p className={`font-semibold tabular-nums ${worker.failed > 0n ? "text-red-700" : "text-slate-900"}`}>{String(worker.failed)}</p>
        </div>
      </div>
    </li>
  );
}
