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
