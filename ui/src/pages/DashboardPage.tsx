import { useCallback, useEffect, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router";
import type { Api } from "../api/client";
import { useApi } from "../auth/AuthContext";
import { StatusBadge } from "../components/StatusBadge";
import { UsagePanel } from "../components/UsagePanel";
import { PhotoIcon, PlusIcon, RefreshIcon } from "../components/icons";
import { Alert, Button, ButtonLink, Card, EmptyState, PageHeader, SelectField } from "../components/ui";
import type { Task } from "../gen/pixelflow/v1/task_pb";
import { TaskStatus } from "../gen/pixelflow/v1/task_pb";
import { describeError } from "../lib/errors";
import { formatBytes, formatDateTime, formatRelative, toDate } from "../lib/format";
import { describeOperation, formatLabel } from "../tasks/operations";
import { STATUS_FILTERS, driftNotice, driftedIds, statusLabel } from "../tasks/status";
import { SourceIcon, sourceLabel } from "../tasks/TaskSource";
import type { WatchState } from "../tasks/useTaskWatch";
import { useTaskWatch } from "../tasks/useTaskWatch";

const PAGE_SIZE = 10;

export function DashboardPage() {
  const api = useApi();
  const [params, setParams] = useSearchParams();
  // The filter picked, at once: the router applies a new URL in a transition, which can take a
  // few hundred milliseconds to commit on a busy machine, and the list must not wait for it (nor
  // show a reply of the old filter meanwhile). Back and forward still set it from the URL.
  const urlStatus = params.get("status") ?? "";
  const [picked, setPicked] = useState(urlStatus);
  useEffect(() => setPicked(urlStatus), [urlStatus]);
  const filter = STATUS_FILTERS.find((item) => item.value === picked) ?? STATUS_FILTERS[0]!;
  // Page tokens of the pages before this one, so "Newer" can go back.
  const [tokens, setTokens] = useState<string[]>([]);
  const [pageToken, setPageToken] = useState("");
  // The loaded page and the filter it answers: a reply of the previous filter that lands after a
  // new one was picked is never shown as the new one's. (Another page or a reload keeps the rows
  // shown, dimmed, until the new reply replaces them.)
  const [listing, setListing] = useState<{ status: TaskStatus; tasks: Task[]; nextToken: string } | null>(null);
  const tasks = listing?.status === filter.status ? listing.tasks : null;
  const nextToken = listing?.status === filter.status ? listing.nextToken : "";
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [reload, setReload] = useState(0);
  // The live status of each row (from its stream), to notice rows that left the filter.
  const [live, setLive] = useState<ReadonlyMap<string, TaskStatus>>(() => new Map());
  const onStatus = useCallback((id: string, status: TaskStatus) => {
    setLive((current) => (current.get(id) === status ? current : new Map(current).set(id, status)));
  }, []);
  const drifted = useMemo(
    () => new Set(driftedIds(filter.status, (tasks ?? []).map((task) => ({ id: task.id, status: live.get(task.id) ?? task.status })))),
    [filter.status, tasks, live],
  );
  const notice = driftNotice(filter.status, drifted.size);

  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    setError(null);
    api.tasks
      .listTasks({ pageSize: PAGE_SIZE, pageToken, status: filter.status }, { signal: controller.signal })
      .then((reply) => {
        if (controller.signal.aborted) return;
        setListing({ status: filter.status, tasks: reply.tasks, nextToken: reply.nextPageToken });
        setLoading(false);
      })
      .catch((caught: unknown) => {
        if (controller.signal.aborted) return;
        setError(describeError(caught));
        setLoading(false);
      });
    return () => controller.abort();
  }, [api, pageToken, filter.status, reload]);

  const changeFilter = useCallback(
    (value: string) => {
      setTokens([]);
      setPageToken("");
      setPicked(value);
      setParams(value ? { status: value } : {}, { replace: true });
    },
    [setParams],
  );

  const pageNumber = tokens.length + 1;

  return (
    <>
      <PageHeader
        title="Tasks"
        description="Your image tasks, newest first. Statuses update live."
        actions={
          <ButtonLink to="/tasks/new">
            <PlusIcon className="h-4 w-4" /> New task
          </ButtonLink>
        }
      />
      <UsagePanel version={reload} />
      <Card>
        <div className="flex items-end justify-between gap-3 border-b border-slate-100 px-4 py-3 sm:px-5">
          <SelectField label="Status" value={filter.value} onChange={(e) => changeFilter(e.target.value)} className="min-w-0 flex-1 sm:w-52 sm:flex-none">
            {STATUS_FILTERS.map((item) => (
              <option key={item.value} value={item.value}>
                {item.label}
              </option>
            ))}
          </SelectField>
          <Button variant="ghost" size="sm" onClick={() => setReload((n) => n + 1)} aria-label="Reload the list" busy={loading && tasks !== null} className="mb-0.5 shrink-0">
            {!(loading && tasks !== null) && <RefreshIcon className="h-4 w-4" />} Reload
          </Button>
        </div>
        {notice && tasks !== null && tasks.length > 0 && (
          <div
            role="status"
            data-testid="filter-drift"
            className="flex flex-wrap items-center justify-between gap-x-3 gap-y-2 border-b border-amber-100 bg-amber-50 px-4 py-2 text-sm text-amber-900 sm:px-5"
          >
            <span>
              {notice} {drifted.size === 1 ? "It stays" : "They stay"} marked here until the list is updated.
            </span>
            <Button variant="secondary" size="sm" onClick={() => setReload((n) => n + 1)} disabled={loading}>
              Update list
            </Button>
          </div>
        )}
        {error && (
          <div className="p-4">
            <Alert>{error}</Alert>
          </div>
        )}
        {tasks === null && loading && <ListSkeleton />}
        {tasks !== null && tasks.length === 0 && !error && (
          <EmptyState icon={<PhotoIcon className="h-6 w-6" />} title={filter.value ? `No ${filter.label.toLowerCase()} tasks` : "No tasks yet"}>
            {filter.value ? (
              <p>Try another status, or create a task.</p>
            ) : (
              <p>Submit an image by URL or upload, pick some operations, and watch it being processed.</p>
            )}
            <ButtonLink to="/tasks/new" className="mt-4">
              <PlusIcon className="h-4 w-4" /> New task
            </ButtonLink>
          </EmptyState>
        )}
        {tasks !== null && tasks.length > 0 && (
          <ul role="list" aria-label="Tasks" aria-busy={loading} className={`divide-y divide-slate-100 ${loading ? "opacity-60" : ""}`}>
            {tasks.map((task) => (
              <TaskRow
                key={task.id}
                api={api}
                initial={task}
                driftedFrom={drifted.has(task.id) ? statusLabel(filter.status).toLowerCase() : null}
                onStatus={onStatus}
              />
            ))}
          </ul>
        )}
        {tasks !== null && (tokens.length > 0 || nextToken) && (
          <nav aria-label="Pagination" className="flex items-center justify-between gap-3 border-t border-slate-100 px-4 py-3 sm:px-5">
            <Button
              variant="secondary"
              size="sm"
              disabled={tokens.length === 0 || loading}
              onClick={() => {
                setPageToken(tokens[tokens.length - 1] ?? "");
                setTokens(tokens.slice(0, -1));
                window.scrollTo(0, 0); // a new page starts at its top
              }}
            >
              ← Newer
            </Button>
            <span className="text-sm text-slate-500">Page {pageNumber}</span>
            <Button
              variant="secondary"
              size="sm"
              disabled={!nextToken || loading}
              onClick={() => {
                setTokens([...tokens, pageToken]);
                setPageToken(nextToken);
                window.scrollTo(0, 0); // a new page starts at its top
              }}
            >
              Older →
            </Button>
          </nav>
        )}
      </Card>
    </>
  );
}

interface TaskRowProps {
  api: Api;
  initial: Task;
  /** The filter's status (lower case) when this task has left it since the list was loaded. */
  driftedFrom: string | null;
  onStatus(id: string, status: TaskStatus): void;
}

function TaskRow({ api, initial, driftedFrom, onStatus }: TaskRowProps) {
  const { task, state } = useTaskWatch(api, initial);
  const source = sourceLabel(task);
  const operations = task.operations.map(describeOperation);
  useEffect(() => onStatus(task.id, task.status), [onStatus, task.id, task.status]);
  return (
    <li
      data-testid="task-row"
      data-task-id={task.id}
      data-drifted={driftedFrom ? "true" : undefined}
      className={`relative flex items-center gap-3 px-4 py-3 sm:px-5 ${driftedFrom ? "bg-slate-50/70" : "hover:bg-slate-50"}`}
    >
      <SourceIcon task={task} />
      <div className="min-w-0 flex-1">
        <p className={`truncate text-sm font-medium text-slate-900 ${driftedFrom ? "opacity-60" : ""}`}>
          <Link
            to={`/tasks/${task.id}`}
            className="after:absolute after:inset-0 after:rounded-sm focus:outline-none focus-visible:after:ring-2 focus-visible:after:ring-indigo-500 focus-visible:after:ring-inset"
          >
            {source.primary}
          </Link>
        </p>
        <p className={`truncate text-xs text-slate-500 ${driftedFrom ? "opacity-60" : ""}`}>
          <span>{source.secondary}</span>
          <span aria-hidden="true"> · </span>
          <span>{operations.length ? operations.join(" → ") : "No operations"}</span>
          <span aria-hidden="true"> · </span>
          <span>{formatLabel(task.output?.format ?? 0)}</span>
        </p>
        {driftedFrom && (
          <p className="mt-0.5 truncate text-xs font-medium text-amber-800" data-testid="row-drift">
            No longer {driftedFrom}
          </p>
        )}
      </div>
      <div className="hidden w-36 shrink-0 text-right text-xs text-slate-500 sm:block">
        {task.status === TaskStatus.COMPLETED && task.result ? (
          <>
            <p className="font-medium text-slate-700">
              {task.result.width}×{task.result.height}
            </p>
            <p>{formatBytes(task.result.sizeBytes)}</p>
          </>
        ) : task.status === TaskStatus.FAILED && task.error ? (
          <p className="truncate font-medium text-red-700" title={task.error.message}>
            {task.error.code}
          </p>
        ) : null}
      </div>
      <div className="flex w-24 shrink-0 flex-col items-end gap-1 sm:w-28">
        <StatusBadge status={task.status} />
        <time className="text-xs text-slate-500" dateTime={toDate(task.createdAt)?.toISOString()} title={formatDateTime(task.createdAt)}>
          {formatRelative(task.createdAt)}
        </time>
      </div>
      <LiveDot state={state} />
    </li>
  );
}

function LiveDot({ state }: { state: WatchState }) {
  if (state === "idle" || state === "gone") return null;
  const text = state === "live" ? "Live updates on" : state === "queued" ? "Waiting for a live-update slot" : "Reconnecting live updates";
  return (
    <span className="absolute top-2 left-1.5" title={text}>
      <span className={`block h-1.5 w-1.5 rounded-full ${state === "live" ? "bg-emerald-500" : "bg-slate-300"}`} aria-hidden="true" />
      <span className="sr-only">{text}</span>
    </span>
  );
}

function ListSkeleton() {
  return (
    <ul aria-label="Loading tasks" aria-busy="true" className="divide-y divide-slate-100">
      {[0, 1, 2, 3].map((i) => (
        <li key={i} className="flex animate-pulse items-center gap-3 px-4 py-4 sm:px-5">
          <span className="h-9 w-9 rounded-lg bg-slate-100" />
          <span className="flex-1 space-y-2">
            <span className="block h-3 w-1/3 rounded bg-slate-100" />
            <span className="block h-2.5 w-2/3 rounded bg-slate-100" />
          </span>
          <span className="h-5 w-20 rounded-full bg-slate-100" />
        </li>
      ))}
    </ul>
  );
}
