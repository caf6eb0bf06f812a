import type { FormEvent } from "react";
import { useEffect, useMemo, useState } from "react";
import { useNavigate } from "react-router";
import { uploadFile } from "../api/uploads";
import { useApi } from "../auth/AuthContext";
import { useConfig } from "../config";
import { Dropzone, checkFile } from "../components/Dropzone";
import { LinkIcon, UploadIcon } from "../components/icons";
import { OperationBuilder } from "../components/OperationBuilder";
import { Alert, Button, ButtonLink, Card, CardHeader, CheckboxField, PageHeader, SelectField, TextField } from "../components/ui";
import { describeError } from "../lib/errors";
import type { FormatName, OperationDraft, OutputDraft } from "../tasks/operations";
import { validate } from "../tasks/draftValidation";
import { DEFAULT_OUTPUT, newOperation, outputToProto, toProto } from "../tasks/operations";
import { rememberPreview } from "../tasks/previews";
import { type Violation, serverViolations } from "../tasks/validation";

type SourceMode = "url" | "upload";

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
  const [attempted, setAttempted] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  // The server's verdict on the last attempt (its BadRequest field violations), until an edit.
  const [rejected, setRejected] = useState<Violation[]>([]);
  useEffect(() => setRejected([]), [operations, output]);
  const validation = useMemo(() => validate(operations, output, rejected), [operations, output, rejected]);
  const urlError = mode === "url" ? validateUrl(url) : null;
  const sourceError = mode === "url" ? urlError : file ? fileError : (fileError ?? "Choose an image to upload.");

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
    if (sourceError || !validation.valid) {
      setError("Fix the highlighted fields first.");
      return;
    }
    setBusy(true);
    try {
      const common = {
        operations: operations.map(toProto),
        output: outputToProto(output),
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
            <fieldset>
              <legend className="sr-only">Where the image comes from</legend>
              <div className="inline-flex rounded-lg bg-slate-100 p-1">
                {(
                  [
                    ["url", "From a URL", LinkIcon],
                    ["upload", "Upload a file", UploadIcon],
                  ] as const
                ).map(([value, label, Icon]) => (
                  <label
                    key={value}
                    className={`flex cursor-pointer items-center gap-1.5 rounded-md px-3 py-1.5 text-sm font-medium has-[:focus-visible]:ring-2 has-[:focus-visible]:ring-indigo-500 ${
                      mode === value ? "bg-white text-slate-900 shadow-sm" : "text-slate-600 hover:text-slate-900"
                    }`}
                  >
                    <input type="radio" name="source-mode" value={value} checked={mode === value} onChange={() => setMode(value)} className="sr-only" />
                    <Icon className="h-4 w-4" /> {label}
                  </label>
                ))}
              </div>
            </fieldset>
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
          <CardHeader title="2. Operations" description="Applied in order, top to bottom." />
          <div className="p-4 sm:p-5">
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
        </Card>

        <Card>
          <CardHeader title="3. Output" />
          <div className="space-y-4 p-4 sm:p-5">
            <div className="grid grid-cols-1 gap-3 sm:grid-cols-2 lg:grid-cols-3">
              <SelectField label="Format" value={output.format} error={validation.output.format} onChange={(e) => setOutput({ ...output, format: e.target.value as FormatName })}>
                <option value="source">Same as source</option>
                <option value="jpeg">JPEG</option>
                <option value="png">PNG</option>
                <option value="webp">WebP</option>
                <option value="avif">AVIF</option>
                <option value="gif">GIF</option>
                <option value="tiff">TIFF</option>
                <option value="best">Best (smallest of AVIF, WebP, JPEG/PNG)</option>
              </SelectField>
              <TextField
                label="Quality"
                inputMode="numeric"
                placeholder="Default"
                value={output.quality}
                error={validation.output.quality}
                hint="1–100 for JPEG, WebP and AVIF; empty for the default"
                onChange={(e) => setOutput({ ...output, quality: e.target.value })}
              />
            </div>
            <div className="grid grid-cols-1 gap-3 sm:grid-cols-2">
              <CheckboxField label="Lossless" hint="WebP and AVIF (PNG and TIFF always are)." checked={output.lossless} onChange={(e) => setOutput({ ...output, lossless: e.target.checked })} />
              <CheckboxField label="Keep metadata" hint="EXIF, XMP and ICC are stripped otherwise." checked={output.keepMetadata} onChange={(e) => setOutput({ ...output, keepMetadata: e.target.checked })} />
              <CheckboxField label="Keep colour profile" hint="Colours are converted to sRGB otherwise (CMYK always is)." checked={output.keepColorProfile} onChange={(e) => setOutput({ ...output, keepColorProfile: e.target.checked })} />
              <CheckboxField label="First frame only" hint="Animated GIF and WebP stay animated into GIF or WebP otherwise." checked={output.firstFrameOnly} onChange={(e) => setOutput({ ...output, firstFrameOnly: e.target.checked })} />
              <CheckboxField label="Auto-orient" hint="Turn the image upright by its EXIF orientation." checked={autoOrient} onChange={(e) => setAutoOrient(e.target.checked)} />
            </div>
            {validation.output.lossless && (
              <p className="text-sm font-medium text-red-600" role="alert">
                {validation.output.lossless.charAt(0).toUpperCase() + validation.output.lossless.slice(1)}
              </p>
            )}
          </div>
        </Card>

        {error && <Alert>{error}</Alert>}
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
