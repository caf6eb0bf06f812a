import { TaskStatus } from "../gen/pixelflow/v1/task_pb";

export const TERMINAL: ReadonlySet<TaskStatus> = new Set([
  TaskStatus.COMPLETED,
  TaskStatus.FAILED,
  TaskStatus.CANCELLED,
]);

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL.has(status);
}

export const STATUS_FILTERS: readonly { value: string; label: string; status: TaskStatus }[] = [
  { value: "", label: "All statuses", status: TaskStatus.UNSPECIFIED },
  { value: "pending", label: "Pending", status: TaskStatus.PENDING },
  { value: "processing", label: "Processing", status: TaskStatus.PROCESSING },
  { value: "completed", label: "Completed", status: TaskStatus.COMPLETED },
  { value: "failed", label: "Failed", status: TaskStatus.FAILED },
  { value: "cancelled", label: "Cancelled", status: TaskStatus.CANCELLED },
];

export function statusLabel(status: TaskStatus): string {
  switch (status) {
    case TaskStatus.PENDING:
      return "Pending";
    case TaskStatus.PROCESSING:
      return "Processing";
    case TaskStatus.COMPLETED:
      return "Completed";
    case TaskStatus.FAILED:
      return "Failed";
    case TaskStatus.CANCELLED:
      return "Cancelled";
    default:
      return "Unknown";
  }
}

/** Whether a task with this status belongs in a list filtered by `filter` (UNSPECIFIED: all). */
export function matchesFilter(filter: TaskStatus, status: TaskStatus): boolean {
  return filter === TaskStatus.UNSPECIFIED || status === filter;
}

/**
 * The note above a filtered list when some of its rows have since changed status. Rows that no
 * longer match stay where they are (marked) until the list is reloaded: rows vanishing by
 * themselves would shift the list under the pointer and shift the pages.
 */
export function driftNotice(filter: TaskStatus, count: number): string | null {
  if (filter === TaskStatus.UNSPECIFIED || count <= 0) return null;
  const label = statusLabel(filter).toLowerCase();
  return count === 1 ? `1 task is no longer ${label}.` : `${count} tasks are no longer ${label}.`;
}

/** Ids of the rows on screen whose live status left the filter, in the order the rows are listed. */
export function driftedIds(filter: TaskStatus, rows: readonly { id: string; status: TaskStatus }[]): string[] {
  return rows.filter((row) => !matchesFilter(filter, row.status)).map((row) => row.id);
}
