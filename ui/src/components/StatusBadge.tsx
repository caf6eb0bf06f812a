import { TaskStatus } from "../gen/pixelflow/v1/task_pb";
import { statusLabel } from "../tasks/status";

const STYLES: Record<number, { badge: string; dot: string }> = {
  [TaskStatus.PENDING]: { badge: "bg-amber-50 text-amber-800 ring-amber-600/20", dot: "bg-amber-500" },
  [TaskStatus.PROCESSING]: { badge: "bg-sky-50 text-sky-800 ring-sky-600/20", dot: "bg-sky-500 animate-pulse" },
  [TaskStatus.COMPLETED]: { badge: "bg-emerald-50 text-emerald-800 ring-emerald-600/20", dot: "bg-emerald-500" },
  [TaskStatus.FAILED]: { badge: "bg-red-50 text-red-800 ring-red-600/20", dot: "bg-red-500" },
  [TaskStatus.CANCELLED]: { badge: "bg-slate-100 text-slate-700 ring-slate-500/20", dot: "bg-slate-400" },
};

export function StatusBadge({ status }: { status: TaskStatus }) {
  const style = STYLES[status] ?? { badge: "bg-slate-100 text-slate-700 ring-slate-500/20", dot: "bg-slate-400" };
  return (
    <span
      data-testid="status-badge"
      data-status={statusLabel(status).toUpperCase()}
      className={`inline-flex items-center gap-1.5 whitespace-nowrap rounded-full px-2 py-0.5 text-xs font-semibold ring-1 ring-inset ${style.badge}`}
    >
      <span className={`h-1.5 w-1.5 rounded-full ${style.dot}`} aria-hidden="true" />
      {statusLabel(status)}
    </span>
  );
}
