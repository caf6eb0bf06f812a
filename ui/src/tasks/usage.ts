// How a quota reads on the dashboard: GetUsage's entries as label, numbers and a fill ratio.
import type { QuotaUsage } from "../gen/pixelflow/v1/quota_pb";
import { formatBytes } from "../lib/format";

export interface UsageRow {
  name: string;
  label: string;
  // "3 of 5", "1.2 MB of 10 GB"; max_upload_bytes bounds each upload, so it has no usage.
  text: string;
  // 0..1 of the limit used; null when the limit has no usage to show.
  ratio: number | null;
  overridden: boolean;
}

const LABELS: Record<string, string> = {
  active_tasks: "Active tasks",
  tasks_per_day: "Tasks today (UTC)",
  stored_bytes: "Storage",
  max_upload_bytes: "Largest upload",
};
const BYTES = new Set(["stored_bytes", "max_upload_bytes"]);

export function usageRow(entry: QuotaUsage): UsageRow {
  const show = (value: bigint) => (BYTES.has(entry.name) ? formatBytes(value) : value.toString());
  const label = LABELS[entry.name] ?? entry.name;
  if (entry.name === "max_upload_bytes") {
    return { name: entry.name, label, text: show(entry.value), ratio: null, overridden: entry.overridden };
  }
  const ratio = entry.value === 0n ? 1 : Math.min(1, Number(entry.used) / Number(entry.value));
  return { name: entry.name, label, text: `${show(entry.used)} of ${show(entry.value)}`, ratio, overridden: entry.overridden };
}
