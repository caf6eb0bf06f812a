import { Code, ConnectError } from "@connectrpc/connect";
import type { ReactNode } from "react";
import { useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import type { Api } from "../api/client";
import { downloadResult } from "../api/uploads";
import { useApi } from "../auth/AuthContext";
import { StatusBadge } from "../components/StatusBadge";
import { ArrowLeftIcon, DownloadIcon, RefreshIcon, StopIcon, TrashIcon } from "../components/icons";
import { Alert, Button, ButtonLink, Card, CardHeader, EmptyState, FOCUS_RING, Spinner, buttonClass } from "../components/ui";
import type { Task } from "../gen/pixelflow/v1/task_pb";
import { TaskStatus } from "../gen/pixelflow/v1/task_pb";
import type { WebhookDelivery } from "../gen/pixelflow/v1/webhook_pb";
import { WebhookDeliveryState } from "../gen/pixelflow/v1/webhook_pb";
import { describeError } from "../lib/errors";
import { formatBytes, formatDateTime, formatDuration } from "../lib/format";
import { describeOperation, extensionFor, formatLabel } from "../tasks/operations";
import { forgetPreview, previewFor } from "../tasks/previews";
import { isTerminal } from "../tasks/status";
import { useTaskWatch } from "../tasks/useTaskWatch";

export function TaskPage() {
  const { taskId = "" } = useParams();
  const api = useApi();
  const [task, setTask] = useState<Task | null>(null);
  const [error, setError] = useState<{ notFound: boolean; message: string } | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    setTask(null);
    setError(null);
    api.tasks
      .getTask({ taskId }, { signal: controller.signal })
      .then(setTask)
      .catch((caught: unknown) => {
        if (controller.signal.aborted) return;
        const code = ConnectError.from(caught).code;
        setError({ notFound: code === Code.NotFound || code === Code.InvalidArgument, message: describeError(caught) });
      });
    return () => controller.abort();
  }, [api, taskId]);

  if (error?.notFound) {
    return (
      <Card>
        <EmptyState title="Task not found">
          <p>It may have been deleted, or it belongs to someone else.</p>
          <ButtonLink to="/" variant="secondary" className="mt-4">
            Back to your tasks
          </ButtonLink>
        </EmptyState>
      </Card>
    );
  }
  if (error) return <Alert>{error.message}</Alert>;
  if (!task)
    return (
      <div className="flex items-center gap-2 py-16 text-sm text-slate-500" role="status">
        <Spinner className="h-4 w-4" /> Loading the task…
      </div>
    );
  return <TaskView key={task.id} api={api} initial={task} />;
}

function TaskView({ api, initial }: { api: Api; initial: Task }) {
  const { task, state } = useTaskWatch(api, initial);
  const navigate = useNavigate();
  const [busy, setBusy] = useState<"cancel" | "delete" | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const [cancelled, setCancelled] = useState<Task | null>(null);
  const current = cancelled && !isTerminal(task.status) ? cancelled : task;
  const result = useResult(api, current);

  async function cancel() {
    setBusy("cancel");
    setActionError(null);
    try {
      setCancelled(await api.tasks.cancelTask({ taskId: task.id }));
    } catch (caught) {
      setActionError(describeError(caught));
    } finally {
      setBusy(null);
    }
  }

  async function remove() {
    setBusy("delete");
    setActionError(null);
    try {
      await api.tasks.deleteTask({ taskId: task.id });
      forgetPreview(task.id);
      navigate("/", { replace: true });
    } catch (caught) {
      setActionError(describeError(caught));
      setBusy(null);
    }
  }

  const extension = result.contentType ? extensionFor(result.contentType) : "img";
  return (
    <>
      <Link to="/" className={`mb-4 inline-flex items-center gap-1 rounded-md text-sm font-medium text-slate-500 hover:text-slate-900 ${FOCUS_RING}`}>
        <ArrowLeftIcon className="h-4 w-4" /> All tasks
      </Link>
      <div className="mb-6 flex flex-wrap items-start justify-between gap-4">
        <div className="min-w-0">
          <div className="flex flex-wrap items-center gap-3">
            <h1 className="text-2xl font-bold tracking-tight text-slate-900">Task</h1>
            <StatusBadge status={current.status} />
            {state === "live" && !isTerminal(current.status) && (
              <span className="inline-flex items-center gap-1 text-xs text-emerald-700">
                <span className="h-1.5 w-1.5 animate-pulse rounded-full bg-emerald-500" aria-hidden="true" /> Live
              </span>
            )}
            {state === "reconnecting" && <span className="text-xs text-slate-500">Reconnecting…</span>}
          </div>
          <p className="mt-1 truncate font-mono text-xs text-slate-500" title={current.id}>
            {current.id}
          </p>
        </div>
        <div className="flex flex-wrap items-center gap-2">
          {current.status === TaskStatus.COMPLETED && result.url && (
            <a href={result.url} download={`pixelflow-${current.id}.${extension}`} className={buttonClass("primary")}>
              <DownloadIcon className="h-4 w-4" /> Download
            </a>
          )}
          {!isTerminal(current.status) && (
            <Button variant="secondary" onClick={cancel} busy={busy === "cancel"}>
              <StopIcon className="h-4 w-4" /> Cancel task
            </Button>
          )}
          {confirmDelete ? (
            <span className="inline-flex items-center gap-2 rounded-lg bg-red-50 px-2 py-1 ring-1 ring-red-200">
              <span className="text-sm text-red-800">Delete for good?</span>
              <Button variant="danger" size="sm" onClick={remove} busy={busy === "delete"} autoFocus>
                Delete
              </Button>
              <Button variant="ghost" size="sm" onClick={() => setConfirmDelete(false)}>
                Keep
              </Button>
            </span>
          ) : (
            <Button variant="danger" onClick={() => setConfirmDelete(true)}>
              <TrashIcon className="h-4 w-4" /> Delete
            </Button>
          )}
        </div>
      </div>

      {actionError && (
        <div className="mb-4">
          <Alert>{actionError}</Alert>
        </div>
      )}
      {current.status === TaskStatus.FAILED && (
        <div className="mb-6">
          <Alert title={`Processing failed: ${current.error?.code || "UNKNOWN"}`}>
            <span data-testid="task-error">{current.error?.message || "The worker gave no reason."}</span>
            {current.error?.retryable && " (a temporary problem: submitting the task again may work)"}
          </Alert>
        </div>
      )}

      <div className="grid grid-cols-1 gap-6 lg:grid-cols-2">
        <Card>
          <CardHeader title="Original" description={<OriginalCaption task={current} />} />
          <div className="p-4 sm:p-5">
            <Original task={current} />
          </div>
        </Card>
        <Card>
          <CardHeader
            title="Result"
            description={current.result ? `${current.result.width}×${current.result.height} · ${formatLabel(current.result.format)} · ${formatBytes(current.result.sizeBytes)}` : "Appears here when the task completes"}
          />
          <div className="p-4 sm:p-5">
            <ImageFrame>
              {current.status === TaskStatus.COMPLETED ? (
                result.url ? (
                  <img src={result.url} alt="Processed result" data-testid="result-image" className="max-h-full max-w-full object-contain" />
                ) : result.error ? (
                  <p className="px-4 text-center text-sm text-red-700">{result.error}</p>
                ) : (
                  <Placeholder icon={<Spinner className="h-6 w-6" />} text="Loading the result…" />
                )
              ) : current.status === TaskStatus.PROCESSING ? (
                <Placeholder icon={<Spinner className="h-6 w-6 text-sky-600" />} text="Processing…" />
              ) : current.status === TaskStatus.PENDING ? (
                <Placeholder icon={<span className="h-3 w-3 animate-pulse rounded-full bg-amber-400" />} text="Waiting for a worker…" />
              ) : (
                <Placeholder text={current.status === TaskStatus.CANCELLED ? "Cancelled: no result." : "No result."} />
              )}
            </ImageFrame>
          </div>
        </Card>
      </div>

      <div className="mt-6 grid grid-cols-1 gap-6 lg:grid-cols-2">
        <Card>
          <CardHeader title="Pipeline" description={current.preset ? <span data-testid="task-preset">From the preset “{current.preset}” (as it was when the task was created)</span> : undefined} />
          <div className="p-4 sm:p-5">
            {current.operations.length === 0 ? (
              <p className="text-sm text-slate-500">No operations (re-encode only).</p>
            ) : (
              <ol className="space-y-2">
                {current.operations.map((op, index) => (
                  <li key={index} className="flex items-center gap-2 text-sm text-slate-700">
                    <span className="grid h-5 w-5 shrink-0 place-items-center rounded-full bg-slate-100 text-xs font-semibold text-slate-600">{index + 1}</span>
                    {describeOperation(op)}
                  </li>
                ))}
              </ol>
            )}
            <dl className="mt-4 grid grid-cols-2 gap-x-4 gap-y-2 border-t border-slate-100 pt-4 text-sm">
              <Meta label="Output format" value={formatLabel(current.output?.format ?? 0)} />
              <Meta label="Quality" value={current.output?.quality ? String(current.output.quality) : "Default"} />
              <Meta label="Lossless" value={current.output?.lossless ? "Yes" : "No"} />
              <Meta label="Metadata" value={current.output?.keepMetadata ? "Kept" : "Stripped"} />
              <Meta label="Colours" value={current.output?.keepColorProfile ? "Source profile kept" : "sRGB"} />
              <Meta label="Animation" value={current.output?.firstFrameOnly ? "First frame only" : "Kept"} />
              <Meta label="Auto-orient" value={current.skipAutoOrient ? "Off" : "On"} />
            </dl>
          </div>
        </Card>
        <Card>
          <CardHeader title="Details" />
          <dl className="grid grid-cols-1 gap-x-4 gap-y-2 p-4 text-sm min-[420px]:grid-cols-2 sm:p-5">
            <Meta label="Created" value={formatDateTime(current.createdAt)} />
            <Meta label="Started" value={formatDateTime(current.startedAt)} />
            <Meta label="Finished" value={formatDateTime(current.completedAt)} />
            <Meta label="Attempts" value={String(current.attempts)} />
            <Meta label="Worker" value={current.workerId || "—"} mono />
            {current.result?.timings && <Meta label="Total time" value={formatDuration(current.result.timings.totalMs)} />}
            {current.result && (
              <>
                <Meta label="Dimensions" value={`${current.result.width} × ${current.result.height} px`} testId="result-dimensions" />
                <Meta label="Size" value={formatBytes(current.result.sizeBytes)} />
                <Meta label="Content type" value={current.result.contentType} />
                <Meta label="SHA-256" value={current.result.sha256} mono wide />
              </>
            )}
          </dl>
        </Card>
      </div>
      {current.callbackUrl && <WebhookCard api={api} task={current} />}
    </>
  );
}

function useResult(api: Api, task: Task): { url: string | null; contentType: string | null; error: string | null } {
  const [state, setState] = useState<{ url: string | null; contentType: string | null; error: string | null }>({ url: null, contentType: null, error: null });
  const completed = task.status === TaskStatus.COMPLETED;
  useEffect(() => {
    if (!completed) return;
    const controller = new AbortController();
    let objectUrl: string | null = null;
    downloadResult(api, task.id, controller.signal)
      .then((blob) => {
        objectUrl = URL.createObjectURL(blob);
        setState({ url: objectUrl, contentType: blob.type, error: null });
      })
      .catch((caught: unknown) => {
        if (!controller.signal.aborted) setState({ url: null, contentType: null, error: describeError(caught) });
      });
    return () => {
      controller.abort();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [api, task.id, completed]);
  return state;
}

function OriginalCaption({ task }: { task: Task }) {
  if (task.source.case === "sourceUrl") return <span className="break-all">From a URL</span>;
  if (task.source.case === "upload") {
    const upload = task.source.value;
    return (
      <>
        Uploaded · {formatBytes(upload.sizeBytes)}
        {upload.contentType && ` · ${upload.contentType}`}
      </>
    );
  }
  return null;
}

function Original({ task }: { task: Task }) {
  if (task.source.case === "sourceUrl") {
    const url = task.source.value;
    return (
      <div className="space-y-3">
        <ImageFrame>
          <RemoteImage key={url} src={url} alt="Original (loaded from its URL)" />
        </ImageFrame>
        <a href={url} target="_blank" rel="noreferrer noopener" className={`block truncate rounded-sm text-sm text-indigo-600 hover:underline ${FOCUS_RING}`} data-testid="source-url">
          {url}
        </a>
      </div>
    );
  }
  if (task.source.case === "upload") {
    const preview = previewFor(task.id);
    return preview ? (
      <ImageFrame>
        <img src={preview.url} alt={`Original: ${preview.filename}`} data-testid="original-preview" className="max-h-full max-w-full object-contain" />
      </ImageFrame>
    ) : (
      <ImageFrame>
        <Placeholder text={task.source.value.filename || "Uploaded image"} sub="The uploaded file is not kept in the browser after a reload." />
      </ImageFrame>
    );
  }
  return null;
}

/** An image from somewhere else: a placeholder while it loads, and a note if the browser cannot show it. */
function RemoteImage({ src, alt }: { src: string; alt: string }) {
  const [state, setState] = useState<"loading" | "loaded" | "failed">("loading");
  return (
    <>
      {state === "loading" && <Placeholder icon={<Spinner className="h-6 w-6 text-slate-400" />} text="Loading the original…" />}
      {state === "failed" && (
        <Placeholder text="The browser could not load this image." sub="The worker fetches the URL on its own; this preview is only a convenience." />
      )}
      <img
        src={src}
        alt={alt}
        referrerPolicy="no-referrer"
        onLoad={() => setState("loaded")}
        onError={() => setState("failed")}
        data-state={state}
        className={state === "loaded" ? "max-h-full max-w-full object-contain" : "hidden"}
      />
    </>
  );
}

function ImageFrame({ children }: { children: ReactNode }) {
  // The inner box has a definite size, so max-h-full really caps an image taller than the frame.
  return (
    <div className="checkerboard relative h-64 overflow-hidden rounded-lg ring-1 ring-slate-200 sm:h-80" data-testid="image-frame">
      <div className="absolute inset-0 flex items-center justify-center">{children}</div>
    </div>
  );
}

function Placeholder({ icon, text, sub }: { icon?: ReactNode; text: string; sub?: string }) {
  return (
    <div className="flex flex-col items-center gap-2 px-4 text-center">
      {icon}
      <p className="text-sm font-medium text-slate-600">{text}</p>
      {sub && <p className="text-xs text-slate-400">{sub}</p>}
    </div>
  );
}

function Meta({ label, value, mono = false, wide = false, testId }: { label: string; value: string; mono?: boolean; wide?: boolean; testId?: string }) {
  return (
    <div className={`min-w-0 ${wide ? "min-[420px]:col-span-2" : ""}`}>
      <dt className="text-xs text-slate-500">{label}</dt>
      <dd className={`truncate text-slate-900 ${mono ? "font-mono text-xs" : ""}`} title={value} data-testid={testId}>
        {value}
      </dd>
    </div>
  );
}

const DELIVERY_STATES: Record<WebhookDeliveryState, string> = {
  [WebhookDeliveryState.UNSPECIFIED]: "Unknown",
  [WebhookDeliveryState.PENDING]: "Retrying",
  [WebhookDeliveryState.DELIVERED]: "Delivered",
  [WebhookDeliveryState.FAILED]: "Given up",
};

/** The task's webhook events and every attempt. Deliveries are not streamed (WatchTask ends with
 *  the task, its event is sent after): they are read with the task, and again on request. */
function WebhookCard({ api, task }: { api: Api; task: Task }) {
  const [deliveries, setDeliveries] = useState<WebhookDelivery[]>(task.webhookDeliveries);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function refresh() {
    setLoading(true);
    try {
      setDeliveries((await api.tasks.getTask({ taskId: task.id })).webhookDeliveries);
      setError(null);
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setLoading(false);
    }
  }

  // The task ending is when its event is made: read the deliveries then, and again while the
  // event is not made yet or still being retried (every few seconds, growing: no stream says it).
  const terminal = isTerminal(task.status);
  const settled = deliveries.length > 0 && deliveries.every((d) => d.state !== WebhookDeliveryState.PENDING);
  const [reads, setReads] = useState(0);
  useEffect(() => {
    if (!terminal || (settled && reads > 0)) return;
    const timer = window.setTimeout(
      () => {
        void refresh().finally(() => setReads((n) => n + 1));
      },
      reads === 0 ? 0 : Math.min(1000 * 2 ** (reads - 1), 10_000),
    );
    return () => window.clearTimeout(timer);
  }, [terminal, settled, reads]);

  return (
    <div className="mt-6">
      <Card>
        <CardHeader
          title="Webhook"
          description={<span className="break-all font-mono text-xs">{task.callbackUrl}</span>}
          actions={
            <Button size="sm" variant="secondary" onClick={() => void refresh()} busy={loading}>
              <RefreshIcon className="h-4 w-4" /> Refresh
            </Button>
          }
        />
        <div className="p-4 sm:p-5" data-testid="webhook-deliveries">
          {error && <Alert>{error}</Alert>}
          {deliveries.length === 0 ? (
            <p className="text-sm text-slate-500">{terminal ? "The event is being prepared." : "An event is sent when the task ends."}</p>
          ) : (
            deliveries.map((delivery) => (
              <div key={delivery.id} className="mb-4 last:mb-0">
                <p className="text-sm text-slate-700">
                  <span className="font-semibold" data-testid="delivery-state">
                    {DELIVERY_STATES[delivery.state]}
                  </span>{" "}
                  · <span className="font-mono text-xs">{delivery.type}</span> · <span className="font-mono text-xs">{delivery.id}</span>
                </p>
                {delivery.outcome && <p className="mt-1 text-xs text-slate-500">{delivery.outcome}</p>}
                {delivery.nextAttemptAt && <p className="mt-1 text-xs text-slate-500">Next attempt {formatDateTime(delivery.nextAttemptAt)}</p>}
                <table className="mt-2 w-full text-left text-xs">
                  <thead className="text-slate-500">
                    <tr>
                      <th className="py-1 font-medium">Attempt</th>
                      <th className="py-1 font-medium">Time</th>
                      <th className="py-1 font-medium">Answer</th>
                      <th className="py-1 font-medium">Duration</th>
                    </tr>
                  </thead>
                  <tbody className="text-slate-700">
                    {delivery.attempts.map((attempt, index) => (
                      <tr key={index} className="border-t border-slate-100" data-testid="delivery-attempt">
                        <td className="py-1">{index + 1}</td>
                        <td className="py-1">{formatDateTime(attempt.attemptedAt)}</td>
                        <td className="py-1">{attempt.httpStatus ? `HTTP ${attempt.httpStatus}` : attempt.error}</td>
                        <td className="py-1">{formatDuration(attempt.durationMs)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            ))
          )}
        </div>
      </Card>
    </div>
  );
}
