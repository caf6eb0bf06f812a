// Presets: named operation lists + output options, saved per user (PresetService), used from the
// new-task page. The form is the new-task page's builder and output fields, checked by the same
// proto rules (draftValidation.ts), plus the name's own rule.
import type { FormEvent } from "react";
import { useCallback, useEffect, useMemo, useState } from "react";
import { useApi } from "../auth/AuthContext";
import { OperationBuilder } from "../components/OperationBuilder";
import { OutputFields } from "../components/OutputFields";
import { Alert, Button, Card, CardHeader, EmptyState, PageHeader, Spinner, TextField } from "../components/ui";
import { ListIcon, PlusIcon, TrashIcon } from "../components/icons";
import type { Preset } from "../gen/pixelflow/v1/preset_pb";
import { describeError } from "../lib/errors";
import type { OperationDraft, OutputDraft } from "../tasks/operations";
import { DEFAULT_OUTPUT, describeOperation, formatLabel, fromProto, newOperation, outputFromProto, outputToProto, toProto } from "../tasks/operations";
import { validate, validatePresetName } from "../tasks/draftValidation";
import { type Violation, serverViolations } from "../tasks/validation";

/** What the form edits: a new preset (no original name) or an existing one (its name is fixed). */
interface Draft {
  editing: string | null;
  name: string;
  operations: OperationDraft[];
  output: OutputDraft;
}

const blank = (): Draft => ({ editing: null, name: "", operations: [newOperation("resize")], output: DEFAULT_OUTPUT });

/** The draft of a saved preset, for editing. */
export function draftOf(preset: Preset): Draft {
  return { editing: preset.name, name: preset.name, operations: preset.operations.map(fromProto), output: outputFromProto(preset.output) };
}

export function PresetsPage() {
  const api = useApi();
  const [presets, setPresets] = useState<Preset[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [draft, setDraft] = useState<Draft | null>(null);
  const [attempted, setAttempted] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [rejected, setRejected] = useState<Violation[]>([]);

  const load = useCallback(async () => {
    try {
      // One page holds the per-user maximum of presets.
      setPresets((await api.presets.listPresets({ pageSize: 100 })).presets);
      setLoadError(null);
    } catch (caught) {
      setLoadError(describeError(caught));
    }
  }, [api]);
  useEffect(() => {
    void load();
  }, [load]);

  useEffect(() => setRejected([]), [draft]);
  const validation = useMemo(() => (draft ? validate(draft.operations, draft.output, rejected.filter((v) => v.field !== "name")) : null), [draft, rejected]);
  const nameError = draft ? (rejected.find((v) => v.field === "name")?.message ?? validatePresetName(draft.name)) : null;

  function open(next: Draft) {
    setDraft(next);
    setAttempted(false);
    setError(null);
    setNotice(null);
  }

  async function onSave(event: FormEvent) {
    event.preventDefault();
    if (!draft || !validation) return;
    setAttempted(true);
    setError(null);
    if (nameError || !validation.valid) {
      setError("Fix the highlighted fields first.");
      return;
    }
    setBusy(true);
    const request = { name: draft.name, operations: draft.operations.map(toProto), output: outputToProto(draft.output) };
    try {
      if (draft.editing === null) await api.presets.createPreset(request);
      else await api.presets.updatePreset(request);
      setNotice(`Preset “${draft.name}” saved.`);
      setDraft(null);
      await load();
    } catch (caught) {
      const violations = serverViolations(caught);
      setRejected(violations);
      setError(violations.length ? "The server refused some fields; they are highlighted." : describeError(caught));
    } finally {
      setBusy(false);
    }
  }

  async function onDelete(name: string) {
    setError(null);
    try {
      await api.presets.deletePreset({ name });
      setNotice(`Preset “${name}” deleted. Tasks created from it keep their steps.`);
      if (draft?.editing === name) setDraft(null);
      await load();
    } catch (caught) {
      setError(describeError(caught));
    }
  }

  return (
    <>
      <PageHeader
        title="Presets"
        description="Named steps and output options, to use on the new-task page instead of building them each time."
        actions={
          <Button onClick={() => open(blank())} disabled={draft?.editing === null}>
            <PlusIcon className="h-4 w-4" /> New preset
          </Button>
        }
      />
      <div className="space-y-6">
        {notice && <Alert kind="success">{notice}</Alert>}
        {draft && validation && (
          <form onSubmit={onSave} noValidate className="space-y-6" aria-label={draft.editing === null ? "New preset" : `Edit preset ${draft.editing}`}>
            <Card>
              <CardHeader title={draft.editing === null ? "New preset" : `Edit “${draft.editing}”`} description="Tasks already created from a preset keep the steps they were created with." />
              <div className="space-y-6 p-4 sm:p-5">
                <TextField
                  label="Preset name"
                  name="preset_name"
                  value={draft.name}
                  disabled={draft.editing !== null}
                  placeholder="thumb"
                  error={attempted || rejected.length ? (nameError ?? undefined) : undefined}
                  hint="Lower-case letters, digits, - and _; up to 64 characters."
                  onChange={(e) => setDraft({ ...draft, name: e.target.value })}
                />
                <div>
                  <h3 className="mb-3 text-sm font-semibold text-slate-900">Operations</h3>
                  {attempted && validation.list && (
                    <div className="mb-3">
                      <Alert>{validation.list}</Alert>
                    </div>
                  )}
                  {validation.other.map((message) => (
                    <div key={message} className="mb-3">
                      <Alert>{message}</Alert>
                    </div>
                  ))}
                  <OperationBuilder
                    operations={draft.operations}
                    errors={validation.operations}
                    showErrors
                    onChange={(operations) => setDraft({ ...draft, operations })}
                    onAdd={(kind) => setDraft({ ...draft, operations: [...draft.operations, newOperation(kind)] })}
                  />
                </div>
                <div className="space-y-4">
                  <h3 className="text-sm font-semibold text-slate-900">Output</h3>
                  <OutputFields output={draft.output} errors={validation.output} onChange={(output) => setDraft({ ...draft, output })} />
                </div>
              </div>
            </Card>
            {error && <Alert>{error}</Alert>}
            <div className="flex flex-col-reverse gap-3 sm:flex-row sm:justify-end">
              <Button variant="secondary" onClick={() => setDraft(null)}>
                Cancel
              </Button>
              <Button type="submit" busy={busy}>
                {busy ? "Saving…" : "Save preset"}
              </Button>
            </div>
          </form>
        )}
        {!draft && error && <Alert>{error}</Alert>}
        <Card>
          <CardHeader title="Your presets" />
          {loadError ? (
            <div className="p-4 sm:p-5">
              <Alert>{loadError}</Alert>
            </div>
          ) : presets === null ? (
            <div className="flex items-center gap-2 p-5 text-sm text-slate-500" role="status">
              <Spinner className="h-4 w-4" /> Loading…
            </div>
          ) : presets.length === 0 ? (
            <EmptyState icon={<ListIcon className="h-6 w-6" />} title="No presets yet">
              Save a list of steps and output options once, then pick it by name for each new task.
            </EmptyState>
          ) : (
            <ul className="divide-y divide-slate-100" aria-label="Presets">
              {presets.map((preset) => (
                <li key={preset.name} data-testid="preset" className="flex flex-wrap items-start gap-3 px-4 py-3 sm:px-5">
                  <div className="min-w-0 flex-1">
                    <p className="font-mono text-sm font-semibold text-slate-900">{preset.name}</p>
                    <p className="mt-0.5 text-sm text-slate-500">
                      {preset.operations.length ? preset.operations.map(describeOperation).join(" → ") : "No operations (re-encode only)"} · {formatLabel(preset.output?.format ?? 0)}
                    </p>
                  </div>
                  <div className="flex gap-2">
                    <Button variant="secondary" size="sm" onClick={() => open(draftOf(preset))} aria-label={`Edit ${preset.name}`}>
                      Edit
                    </Button>
                    <Button variant="secondary" size="sm" onClick={() => void onDelete(preset.name)} aria-label={`Delete ${preset.name}`}>
                      <TrashIcon className="h-3.5 w-3.5" /> Delete
                    </Button>
                  </div>
                </li>
              ))}
            </ul>
          )}
        </Card>
      </div>
    </>
  );
}
