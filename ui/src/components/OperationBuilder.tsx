// The ordered list of operations: add, edit, move up/down, remove. Validation messages come
// from tasks/operations.ts and are shown next to the field they name.
import type { ReactNode } from "react";
import { useId } from "react";
import type { FieldErrors, FitName, GravityName, OperationDraft, OperationKind } from "../tasks/operations";
import { MAX_OPERATIONS, OPERATION_KINDS } from "../tasks/operations";
import { ArrowDownIcon, ArrowUpIcon, PlusIcon, XIcon } from "./icons";
import { Button, CheckboxField, SelectField, TextField } from "./ui";

interface Props {
  operations: OperationDraft[];
  errors: Record<string, FieldErrors>;
  showErrors: boolean;
  onChange(operations: OperationDraft[]): void;
  onAdd(kind: OperationKind): void;
  /** The list's accessible name: a page with several builders (variants) tells them apart. */
  label?: string;
  /** What an empty list means here (the task's own steps: only a re-encode). */
  emptyText?: string;
}

const EMPTY_TEXT = "No operations: the image is only re-encoded (and turned upright by its EXIF orientation). Add steps below; they run in order.";

export function OperationBuilder({ operations, errors, showErrors, onChange, onAdd, label: listLabel = "Operations", emptyText = EMPTY_TEXT }: Props) {
  const addLabelId = useId();
  const update = (index: number, patch: Partial<OperationDraft>) =>
    onChange(operations.map((op, i) => (i === index ? ({ ...op, ...patch } as OperationDraft) : op)));
  const move = (index: number, delta: number) => {
    const next = [...operations];
    const [item] = next.splice(index, 1);
    if (item) next.splice(index + delta, 0, item);
    onChange(next);
  };
  const remove = (index: number) => onChange(operations.filter((_, i) => i !== index));
  const full = operations.length >= MAX_OPERATIONS;

  return (
    <div>
      {operations.length === 0 ? (
        <p className="rounded-lg border border-dashed border-slate-300 px-4 py-6 text-center text-sm text-slate-500">
          {emptyText}
        </p>
      ) : (
        <ol className="space-y-3" aria-label={listLabel}>
          {operations.map((op, index) => {
            const label = OPERATION_KINDS.find((k) => k.kind === op.kind)?.label ?? op.kind;
            const fieldErrors = showErrors ? (errors[op.id] ?? {}) : {};
            return (
              <li key={op.id} data-testid="operation" className="rounded-lg bg-slate-50 p-3 ring-1 ring-slate-200 sm:p-4">
                <div className="mb-3 flex items-center gap-2">
                  <span className="grid h-6 w-6 shrink-0 place-items-center rounded-full bg-indigo-600 text-xs font-bold text-white" aria-hidden="true">
                    {index + 1}
                  </span>
                  <h3 className="flex-1 text-sm font-semibold text-slate-900">
                    <span className="sr-only">Step {index + 1}: </span>
                    {label}
                  </h3>
                  <div className="flex items-center gap-0.5">
                    <IconButton label={`Move ${label} (step ${index + 1}) up`} disabled={index === 0} onClick={() => move(index, -1)}>
                      <ArrowUpIcon className="h-4 w-4" />
                    </IconButton>
                    <IconButton label={`Move ${label} (step ${index + 1}) down`} disabled={index === operations.length - 1} onClick={() => move(index, 1)}>
                      <ArrowDownIcon className="h-4 w-4" />
                    </IconButton>
                    <IconButton label={`Remove ${label} (step ${index + 1})`} onClick={() => remove(index)}>
                      <XIcon className="h-4 w-4" />
                    </IconButton>
                  </div>
                </div>
                <OperationFields op={op} errors={fieldErrors} update={(patch) => update(index, patch)} />
              </li>
            );
          })}
        </ol>
      )}
      <div className="mt-4">
        <p className="mb-2 text-xs font-semibold tracking-wide text-slate-500 uppercase" id={addLabelId}>
          Add an operation {full && <span className="font-normal normal-case">(at most {MAX_OPERATIONS})</span>}
        </p>
        <div className="flex flex-wrap gap-2" role="group" aria-labelledby={addLabelId}>
          {OPERATION_KINDS.map(({ kind, label, description }) => (
            <Button key={kind} variant="secondary" size="sm" disabled={full} onClick={() => onAdd(kind)} title={description} aria-label={`Add ${label}`}>
              <PlusIcon className="h-3.5 w-3.5" /> {label}
            </Button>
          ))}
        </div>
      </div>
    </div>
  );
}

function IconButton({ label, children, ...props }: { label: string; children: ReactNode; disabled?: boolean; onClick(): void }) {
  return (
    <button
      type="button"
      aria-label={label}
      title={label}
      {...props}
      className="grid h-8 w-8 place-items-center rounded-md text-slate-500 hover:bg-white hover:text-slate-900 disabled:cursor-not-allowed disabled:text-slate-300 disabled:hover:bg-transparent"
    >
      {children}
    </button>
  );
}

const GRID = "grid grid-cols-1 gap-3 sm:grid-cols-2 lg:grid-cols-3";

function OperationFields({ op, errors, update }: { op: OperationDraft; errors: FieldErrors; update(patch: Partial<OperationDraft>): void }) {
  const num = (name: string, label: string, value: string, extra: { hint?: string; step?: string; placeholder?: string } = {}) => (
    <TextField
      label={label}
      type="text"
      inputMode="decimal"
      value={value}
      error={errors[name]}
      hint={extra.hint}
      placeholder={extra.placeholder}
      onChange={(e) => update({ [name]: e.target.value } as Partial<OperationDraft>)}
    />
  );
  const colour = (value: string) => (
    <TextField
      label="Background"
      value={value}
      placeholder="#ffffff"
      error={errors.background}
      hint="#rgb, #rrggbb or #rrggbbaa; empty for the default"
      onChange={(e) => update({ background: e.target.value } as Partial<OperationDraft>)}
    />
  );
  switch (op.kind) {
    case "resize":
      return (
        <div className="space-y-3">
          <div className={GRID}>
            {num("width", "Width (px)", op.width, { hint: "Empty or 0: from the height" })}
            {num("height", "Height (px)", op.height, { hint: "Empty or 0: from the width" })}
            <SelectField label="Fit" value={op.fit} onChange={(e) => update({ fit: e.target.value as FitName })}>
              <option value="contain">Contain (pad)</option>
              <option value="cover">Cover (crop)</option>
              <option value="fill">Fill (stretch)</option>
              <option value="inside">Inside</option>
              <option value="outside">Outside</option>
            </SelectField>
            {op.fit === "cover" && (
              <SelectField label="Keep" value={op.gravity} onChange={(e) => update({ gravity: e.target.value as GravityName })}>
                <GravityOptions />
              </SelectField>
            )}
            {colour(op.background)}
          </div>
          <CheckboxField label="Allow upscaling" hint="Otherwise images are never enlarged." checked={op.allowUpscale} onChange={(e) => update({ allowUpscale: e.target.checked })} />
        </div>
      );
    case "crop":
      return (
        <div className="space-y-3">
          <div className={GRID}>
            {num("width", "Width (px)", op.width)}
            {num("height", "Height (px)", op.height)}
            <SelectField label="Position by" value={op.mode} onChange={(e) => update({ mode: e.target.value as "gravity" | "box" })}>
              <option value="gravity">Gravity</option>
              <option value="box">Exact offset</option>
            </SelectField>
            {op.mode === "gravity" ? (
              <SelectField label="Gravity" value={op.gravity} onChange={(e) => update({ gravity: e.target.value as GravityName })}>
                <GravityOptions />
              </SelectField>
            ) : (
              <>
                {num("left", "Left (px)", op.left)}
                {num("top", "Top (px)", op.top)}
              </>
            )}
          </div>
        </div>
      );
    case "rotate":
      return (
        <div className={GRID}>
          {num("angle", "Angle (°, clockwise)", op.angle, { hint: "-360 to 360" })}
          {colour(op.background)}
        </div>
      );
    case "flip":
      return (
        <div className={GRID}>
          <SelectField label="Direction" value={op.direction} onChange={(e) => update({ direction: e.target.value as "horizontal" | "vertical" })}>
            <option value="horizontal">Horizontal (left ↔ right)</option>
            <option value="vertical">Vertical (top ↔ bottom)</option>
          </SelectField>
        </div>
      );
    case "grayscale":
      return <p className="text-sm text-slate-500">Removes all colour. No settings.</p>;
    case "blur":
      return <div className={GRID}>{num("sigma", "Sigma", op.sigma, { hint: "0.3 to 100" })}</div>;
    case "sharpen":
      return (
        <div className={GRID}>
          {num("sigma", "Sigma", op.sigma, { hint: "0.3 to 10; empty for 1", placeholder: "1" })}
          {num("amount", "Amount (%)", op.amount, { hint: "0 to 1000; empty for 100", placeholder: "100" })}
        </div>
      );
    case "adjust":
      return (
        <div className={GRID}>
          {num("brightness", "Brightness", op.brightness, { hint: "0 to 10; 1 = unchanged", placeholder: "1" })}
          {num("contrast", "Contrast", op.contrast, { hint: "0 to 10; 1 = unchanged", placeholder: "1" })}
          {num("saturation", "Saturation", op.saturation, { hint: "0 to 10; 1 = unchanged", placeholder: "1" })}
        </div>
      );
    case "watermark":
      return (
        <div className={GRID}>
          <TextField
            label="Upload id"
            value={op.uploadId}
            error={errors.uploadId}
            hint="One of your uploads (its id from the upload)"
            onChange={(e) => update({ uploadId: e.target.value })}
          />
          <SelectField label="Position" value={op.position} error={errors.position} onChange={(e) => update({ position: e.target.value as GravityName })}>
            {GRAVITY_CHOICES.map((g) => (
              <option key={g} value={g}>
                {g.replace("_", " ").replace(/^./, (c) => c.toUpperCase())}
              </option>
            ))}
          </SelectField>
          {num("margin", "Margin (px)", op.margin, { hint: "0 to 1000", placeholder: "0" })}
          {num("opacity", "Opacity", op.opacity, { hint: "above 0 to 1; empty for 1", placeholder: "1" })}
          {num("scale", "Scale", op.scale, { hint: "share of the image's width, up to 1; empty for its own size" })}
        </div>
      );
  }
}

const GRAVITY_CHOICES = ["center", "north", "north_east", "east", "south_east", "south", "south_west", "west", "north_west"] as const;

/** The choices of a gravity (a crop's, or what a cover resize keeps). */
function GravityOptions() {
  return (
    <>
      {GRAVITY_CHOICES.map((g) => (
        <option key={g} value={g}>
          {g.replace("_", " ").replace(/^./, (c) => c.toUpperCase())}
        </option>
      ))}
      <option value="smart">Smart (the interesting part)</option>
    </>
  );
}
