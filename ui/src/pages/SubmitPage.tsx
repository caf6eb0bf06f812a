import type { FormEvent } from "react";
import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate } from "react-router";
import { uploadFile } from "../api/uploads";
import { useApi } from "../auth/AuthContext";
import { useConfig } from "../config";
import { Dropzone, checkFile } from "../components/Dropzone";
import { LinkIcon, UploadIcon } from "../components/icons";
import { OperationBuilder } from "../components/OperationBuilder";
import { OutputFields } from "../components/OutputFields";
import { Alert, Button, ButtonLink, Card, CardHeader, CheckboxField, PageHeader, SegmentedControl, SelectField, TextField } from "../components/ui";
import { VariantsEditor } from "../components/VariantsEditor";
import type { Preset } from "../gen/pixelflow/v1/preset_pb";
import { describeError } from "../lib/errors";
import type { OperationDraft, OutputDraft } from "../tasks/operations";
import { validate, validateVariants } from "../tasks/draftValidation";
import { DEFAULT_OUTPUT, describeOperation, formatLabel, newOperation, outputToProto, toProto } from "../tasks/operations";
import { rememberPreview } from "../tasks/previews";
import { type Violation, serverViolations } from "../tasks/validation";
import { type VariantDraft, initialVariants, variantPath, variantsPipeline } from "../tasks/variants";

type SourceMode = "url" | "upload";
// The steps are built here, or a saved preset's are used (the server takes one or the other).
type PipelineMode = "steps" | "preset";
// One output (the task's own), or several named ones from one decode (variants).
type OutputMode = "one" | "several";

const FIX_FIELDS = "Fix the highlighted fields first.";

export function validateUrl(text: string): string | null {
  const trimmed = text.trim();
  if (!trimmed) return "Enter the image's URL.";
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return "Enter a full URL, like https://example.com/photo.jpg.";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "Only http and https URLs can be fetched.";
  if (url.username || url.password) return "URLs with credentials are not accepted.";
  return null;
}

export function SubmitPage() {
  const api = useApi();
  const navigate = useNavigate();
  const { maxUploadBytes } = useConfig();
  const [mode, setMode] = useState<SourceMode>("url");
  const [url, setUrl] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [fileError, setFileError] = useState<string | null>(null);
  const [previewUrl, setPreviewUrl] = useState<string | null>(null);
  const [operations, setOperations] = useState<OperationDraft[]>(() => [newOperation("resize")]);
  const [output, setOutput] = useState<OutputDraft>(DEFAULT_OUTPUT);
  const [autoOrient, setAutoOrient] = useState(true);
  const [pipeline, setPipeline] = useState<PipelineMode>("steps");
  const [presets, setPresets] = useState<Preset[] | null>(null);
  const [presetsError, setPresetsError] = useState<string | null>(null);
  const [presetName, setPresetName] = useState("");
  const [outputMode, setOutputMode] = useState<OutputMode>("one");
  const [variants, setVariants] = useState<VariantDraft[]>(initialVariants);
  const [attempted, setAttempted] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  // The server's verdict on the last attempt (its BadRequest field violations), until an edit.
  const [rejected, setRejected] = useState<Violation[]>([]);
  useEffect(() => setRejected([]), [operations, output, variants, outputMode]);
  // A preset holds one output (the proto's create_task.preset_or_variants): with a preset, the
  // choice of several sizes is off, but kept for when the user builds the steps again.
  const several = pipeline === "steps" && outputMode === "several";
  // With variants the task's own output is unset, so only its steps are checked.
  const validation = useMemo(
    () => validate(operations, several ? DEFAULT_OUTPUT : output, rejected.filter((v) => !variantPath(v.field))),
    [operations, output, several, rejected],
  );
  const variantsValidation = useMemo(
    () => (several ? validateVariants(variants, rejected.filter((v) => variantPath(v.field))) : null),
    [several, variants, rejected],
  );
  const urlError = mode === "url" ? validateUrl(url) : null;
  const sourceError = mode === "url" ? urlError : file ? fileError : (fileError ?? "Choose an image to upload.");
  const chosenPreset = presets?.find((preset) => preset.name === presetName);
  const pipelineValid = pipeline === "preset" ? chosenPreset !== undefined : validation.valid && (variantsValidation?.valid ?? true);

  // The user's presets, for the choice in step 2 (one page holds the per-user maximum).
  useEffect(() => {
    let live = true;
    api.presets
      .listPresets({ pageSize: 100 })
      .then((reply) => {
        if (!live) return;
        setPresets(reply.presets);
        setPresetName((current) => current || (reply.presets[0]?.name ?? ""));
      })
      .catch((caught: unknown) => live && setPresetsError(describeError(caught)));
    return () => {
      live = false;
    };
  }, [api]);

  // The preview's object URL lives as long as the selected file (or is handed to the task view).
  useEffect(() => {
    if (!file) {
      setPreviewUrl(null);
      return;
    }
    const objectUrl = URL.createObjectURL(file);
    setPreviewUrl(objectUrl);
    return () => URL.revokeObjectURL(objectUrl);
  }, [file]);

  function chooseFile(candidate: File | null) {
    if (!candidate) {
      setFile(null);
      setFileError(null);
      return;
    }
    const problem = checkFile(candidate, maxUploadBytes);
    setFileError(problem);
    setFile(problem ? null : candidate);
  }

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    setAttempted(true);
    setError(null);
    if (sourceError || !pipelineValid) {
      setError(FIX_FIELDS);
      return;
    }
    setBusy(true);
    try {
      // A preset goes alone: its operations and output are the server's to copy into the task.
      // Variants go with the task's operations and without its output.
      const pipelineFields =
        pipeline === "preset"
          ? { preset: presetName }
          : several
            ? variantsPipeline(operations, variants)
            : { operations: operations.map(toProto), output: outputToProto(output) };
      const common = {
        ...pipelineFields,
        skipAutoOrient: !autoOrient,
        idempotencyKey: crypto.randomUUID(),
      };
      const task =
        mode === "url"
          ? await api.tasks.createTask({ ...common, source: { case: "sourceUrl", value: url.trim() } })
          : await api.tasks.createTask({
              ...common,
              source: { case: "uploadId", value: (await uploadFile(api, file!)).id },
            });
      if (mode === "upload" && file) rememberPreview(task.id, file, file.name);
      navigate(`/tasks/${task.id}`);
    } catch (caught) {
      const violations = serverViolations(caught);
      setRejected(violations);
      setError(violations.length ? "The server refused some fields; they are highlighted." : describeError(caught));
      setBusy(false);
    }
  }

  return (
    <>
      <PageHeader title="New task" description="Pick an image, build the steps, choose the output. Processing happens in the background." />
      <form onSubmit={onSubmit} noValidate className="space-y-6" aria-label="New task">
        <Card>
          <CardHeader title="1. Source image" />
          <div className="space-y-4 p-4 sm:p-5">
            <SegmentedControl
              name="source-mode"
              legend="Where the image comes from"
              value={mode}
              onChange={setMode}
              options={[
                { value: "url", label: <><LinkIcon className="h-4 w-4" /> From a URL</> },
                { value: "upload", label: <><UploadIcon className="h-4 w-4" /> Upload a file</> },
              ]}
            />
            {mode === "url" ? (
              <TextField
                label="Image URL"
                type="url"
                name="source_url"
                placeholder="https://example.com/photo.jpg"
                value={url}
                onChange={(e) => setUrl(e.target.value)}
                error={attempted ? (urlError ?? undefined) : undefined}
                hint="http or https. The worker fetches it; private addresses are refused."
              />
            ) : (
              <Dropzone file={file} previewUrl={previewUrl} error={attempted ? sourceError : fileError} maxBytes={maxUploadBytes} onFile={chooseFile} />
            )}
          </div>
        </Card>

        <Card>
          <CardHeader
            title="2. Operations"
            description={
              pipeline === "preset"
                ? "A saved preset's steps and output."
                : several
                  ? "Applied in order, top to bottom, once: then each variant's own steps."
                  : "Applied in order, top to bottom."
            }
          />
          <div className="space-y-4 p-4 sm:p-5">
            <SegmentedControl
              name="pipeline-mode"
              legend="How the steps are chosen"
              value={pipeline}
              onChange={setPipeline}
              options={[
                { value: "steps", label: "Build steps" },
                { value: "preset", label: "Use a preset" },
              ]}
            />
            {pipeline === "preset" ? (
              <PresetChoice presets={presets} error={presetsError} name={presetName} attempted={attempted} onChange={setPresetName} />
            ) : (
            <div>
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
              operations={operations}
              errors={validation.operations}
              showErrors
              onChange={setOperations}
              onAdd={(kind) => setOperations((current) => [...current, newOperation(kind)])}
            />
            </div>
            )}
          </div>
        </Card>

        <Card>
          <CardHeader
            title="3. Output"
            description={several ? "Each variant is its own output, named, with its own steps after the task's; the image is decoded once for all." : undefined}
          />
          <div className="space-y-4 p-4 sm:p-5">
            <SegmentedControl
              name="output-mode"
              legend="How many outputs"
              value={pipeline === "preset" ? "one" : outputMode}
              onChange={setOutputMode}
              options={[
                { value: "one", label: "One output" },
                {
                  value: "several",
                  label: "Several sizes",
                  disabledReason: pipeline === "preset" ? "A preset holds one output: build the steps to make several sizes." : undefined,
                },
              ]}
            />
            {several && variantsValidation ? (
              <VariantsEditor variants={variants} validation={variantsValidation} showNameErrors={attempted || rejected.length > 0} onChange={setVariants} />
            ) : pipeline === "steps" ? (
              <OutputFields output={output} errors={validation.output} onChange={setOutput} />
            ) : (
              <p className="text-sm text-slate-500">
                The preset&apos;s output: {chosenPreset ? formatLabel(chosenPreset.output?.format ?? 0) : "choose a preset"}
                {chosenPreset?.output?.quality ? `, quality ${chosenPreset.output.quality}` : ""}.
              </p>
            )}
            <CheckboxField label="Auto-orient" hint="Turn the image upright by its EXIF orientation." checked={autoOrient} onChange={(e) => setAutoOrient(e.target.checked)} />
          </div>
        </Card>

        {/* The request to fix the fields goes once they are fixed (a server error stays until the next try). */}
        {error && !(error === FIX_FIELDS && !sourceError && pipelineValid) && <Alert>{error}</Alert>}
        <div className="flex flex-col-reverse gap-3 sm:flex-row sm:justify-end">
          <ButtonLink to="/" variant="secondary">
            Cancel
          </ButtonLink>
          <Button type="submit" busy={busy}>
            {busy ? (mode === "upload" ? "Uploading…" : "Creating…") : "Create task"}
          </Button>
        </div>
      </form>
    </>
  );
}

function PresetChoice({
  presets,
  error,
  name,
  attempted,
  onChange,
}: {
  presets: Preset[] | null;
  error: string | null;
  name: string;
  attempted: boolean;
  onChange(name: string): void;
}) {
  if (error) return <Alert>{error}</Alert>;
  if (presets === null) return <p className="text-sm text-slate-500">Loading your presets…</p>;
  if (presets.length === 0) {
    return (
      <p className="rounded-lg border border-dashed border-slate-300 px-4 py-6 text-center text-sm text-slate-500">
        You have no presets yet.{" "}
        <Link to="/presets" className="font-medium text-indigo-600 hover:text-indigo-500">
          Create one
        </Link>{" "}
        or build the steps here.
      </p>
    );
  }
  const chosen = presets.find((preset) => preset.name === name);
  return (
    <div className="space-y-3">
      <SelectField label="Preset" value={name} error={attempted && !chosen ? "choose a preset" : undefined} onChange={(e) => onChange(e.target.value)}>
        {presets.map((preset) => (
          <option key={preset.name} value={preset.name}>
            {preset.name}
          </option>
        ))}
      </SelectField>
      {chosen && (
        <ol className="list-decimal space-y-0.5 pl-5 text-sm text-slate-700" aria-label="The preset's steps">
          {chosen.operations.length === 0 ? <li className="list-none -ml-5 text-slate-500">No operations (re-encode only).</li> : chosen.operations.map((op, index) => <li key={index}>{describeOperation(op)}</li>)}
        </ol>
      )}
    </div>
  );
}
