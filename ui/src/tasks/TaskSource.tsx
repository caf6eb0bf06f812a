import { LinkIcon, PhotoIcon } from "../components/icons";
import type { Task } from "../gen/pixelflow/v1/task_pb";

/** Where the task's image came from, in one line: a URL's host and path, or the upload's name. */
export function sourceLabel(task: Task): { kind: "url" | "upload" | "none"; primary: string; secondary: string } {
  if (task.source.case === "sourceUrl") {
    try {
      const url = new URL(task.source.value);
      return { kind: "url", primary: url.pathname.split("/").filter(Boolean).pop() || url.host, secondary: url.host };
    } catch {
      return { kind: "url", primary: task.source.value, secondary: "URL" };
    }
  }
  if (task.source.case === "upload") {
    return { kind: "upload", primary: task.source.value.filename || "upload", secondary: "Upload" };
  }
  return { kind: "none", primary: "—", secondary: "" };
}

export function SourceIcon({ task }: { task: Task }) {
  const Icon = task.source.case === "sourceUrl" ? LinkIcon : PhotoIcon;
  return (
    <span className="grid h-9 w-9 shrink-0 place-items-center rounded-lg bg-slate-100 text-slate-500" aria-hidden="true">
      <Icon className="h-4.5 w-4.5" />
    </span>
  );
}
