// The task page's "Variants" card, for a task created with variants: each variant's name and
// what it was asked to be (its own steps, after the task's, and its output); once COMPLETED,
// what it came out as, a preview and a download, fetched like the task's own result.
import type { Api } from "../api/client";
import type { Task, Variant, VariantResult } from "../gen/pixelflow/v1/task_pb";
import { TaskStatus } from "../gen/pixelflow/v1/task_pb";
import { formatBytes } from "../lib/format";
import { describeOperation, extensionFor, formatLabel } from "../tasks/operations";
import { useResultBlob } from "../tasks/useResultBlob";
import { DownloadIcon } from "./icons";
import { Card, CardHeader, Spinner, buttonClass } from "./ui";

export function TaskVariants({ api, task }: { api: Api; task: Task }) {
  return (
    <Card className="mt-6">
      <CardHeader title="Variants" description={`${task.variants.length} outputs. ${stateOf(task.status)}`} />
      <ul className="divide-y divide-slate-100" aria-label="Variants">
        {task.variants.map((variant) => (
          <VariantRow key={variant.name} api={api} task={task} variant={variant} result={task.variantResults.find((r) => r.name === variant.name)} />
        ))}
      </ul>
    </Card>
  );
}

function stateOf(status: TaskStatus): string {
  switch (status) {
    case TaskStatus.PENDING:
      return "Waiting for a worker: these are the outputs it will make.";
    case TaskStatus.PROCESSING:
      return "Processing: these are the outputs on their way.";
    case TaskStatus.COMPLETED:
      return "All made from one decode of the source.";
    default:
      return "None was made.";
  }
}

function VariantRow({ api, task, variant, result }: { api: Api; task: Task; variant: Variant; result: VariantResult | undefined }) {
  const completed = task.status === TaskStatus.COMPLETED && result !== undefined;
  const blob = useResultBlob(api, task.id, variant.name, completed);
  const steps = variant.operations.length ? variant.operations.map(describeOperation).join(" → ") : "The task's steps only";
  const planned = `${formatLabel(variant.output?.format ?? 0)}${variant.output?.quality ? `, quality ${variant.output.quality}` : ""}`;
  const made = result?.result;
  const extension = blob.contentType ? extensionFor(blob.contentType) : "img";
  return (
    <li data-testid="variant-row" data-variant={variant.name} className="flex flex-wrap items-center gap-4 px-4 py-3 sm:px-5">
      <div className="checkerboard grid h-16 w-16 shrink-0 place-items-center overflow-hidden rounded-md ring-1 ring-slate-200">
        {blob.url ? (
          <img src={blob.url} alt={`Variant ${variant.name}`} className="max-h-full max-w-full object-contain" />
        ) : completed && !blob.error ? (
          <Spinner className="h-4 w-4 text-slate-400" label={`Loading ${variant.name}`} />
        ) : null}
      </div>
      {/* At least 12rem of text: on a phone the download button goes to a line of its own. */}
      <div className="min-w-48 flex-1">
        <p className="font-mono text-sm font-semibold text-slate-900">{variant.name}</p>
        <p className="mt-0.5 truncate text-sm text-slate-500" title={steps}>
          {steps} · {planned}
        </p>
        {made ? (
          <p className="mt-0.5 text-sm text-slate-700">
            <span data-testid="variant-result">
              {made.width} × {made.height} px · {formatLabel(made.format)} · {formatBytes(made.sizeBytes)}
            </span>{" "}
            · <span className="font-mono text-xs text-slate-500" title={made.sha256}>sha256 {made.sha256.slice(0, 12)}…</span>
          </p>
        ) : null}
        {blob.error && <p className="mt-0.5 text-sm text-red-700">{blob.error}</p>}
      </div>
      {blob.url && (
        <a
          href={blob.url}
          download={`pixelflow-${task.id}-${variant.name}.${extension}`}
          aria-label={`Download ${variant.name}`}
          className={buttonClass("secondary", "sm")}
        >
          <DownloadIcon className="h-3.5 w-3.5" /> Download
        </a>
      )}
    </li>
  );
}
