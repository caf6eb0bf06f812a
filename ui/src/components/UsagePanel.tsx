import { useEffect, useState } from "react";
import { useApi } from "../auth/AuthContext";
import { describeError } from "../lib/errors";
import type { UsageRow } from "../tasks/usage";
import { usageRow } from "../tasks/usage";
import { Alert, Card, CardHeader } from "./ui";

// The caller's quotas against what they use (QuotaService.GetUsage), read when the dashboard
// opens or its list is reloaded (`version`).
export function UsagePanel({ version }: { version: number }) {
  const api = useApi();
  const [rows, setRows] = useState<UsageRow[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    api.quotas
      .getUsage({}, { signal: controller.signal })
      .then((usage) => {
        if (controller.signal.aborted) return;
        setRows(usage.quotas.map(usageRow));
        setError(null);
      })
      .catch((caught: unknown) => {
        if (!controller.signal.aborted) setError(describeError(caught));
      });
    return () => controller.abort();
  }, [api, version]);

  return (
    <Card className="mb-4">
      <CardHeader title="Usage" description="Your limits and what you use of each; * set for you by an administrator." />
      {error && (
        <div className="p-4">
          <Alert>{error}</Alert>
        </div>
      )}
      {rows && (
        <dl data-testid="usage" className="grid grid-cols-2 gap-x-4 gap-y-3 px-4 py-3 sm:grid-cols-4 sm:px-5">
          {rows.map((row) => (
            <div key={row.name} data-quota={row.name} className="min-w-0">
              <dt className="text-xs font-medium text-slate-500">
                {row.label}
                {row.overridden ? " *" : ""}
              </dt>
              <dd className="mt-0.5 text-sm font-semibold text-slate-900">{row.text}</dd>
              {row.ratio !== null && (
                <div className="mt-1 h-1.5 rounded-full bg-slate-100" aria-hidden="true">
                  <div
                    className={`h-1.5 rounded-full ${row.ratio >= 1 ? "bg-red-500" : row.ratio >= 0.8 ? "bg-amber-500" : "bg-indigo-500"}`}
                    style={{ width: `${Math.round(row.ratio * 100)}%` }}
                  />
                </div>
              )}
            </div>
          ))}
        </dl>
      )}
    </Card>
  );
}
