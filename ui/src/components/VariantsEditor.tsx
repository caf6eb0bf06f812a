// "Several sizes" on the new-task page: the list of variants, each a name, its own steps (the
// operation builder, run after the task's) and its own output (the output fields). Messages come
// from draftValidation.ts's validateVariants and are shown next to the field they name.
import { useId } from "react";
import type { VariantsValidation } from "../tasks/draftValidation";
import { newOperation } from "../tasks/operations";
import type { VariantDraft } from "../tasks/variants";
import { MAX_VARIANTS, newVariant } from "../tasks/variants";
import { PlusIcon, XIcon } from "./icons";
import { OperationBuilder } from "./OperationBuilder";
import { OutputFields } from "./OutputFields";
import { Alert, Button, TextField } from "./ui";

interface Props {
  variants: VariantDraft[];
  validation: VariantsValidation;
  /** Whether a name's error shows (after an attempt: a name being typed is not yet wrong). */
  showNameErrors: boolean;
  onChange(variants: VariantDraft[]): void;
}

export function VariantsEditor({ variants, validation, showNameErrors, onChange }: Props) {
  const fullId = useId();
  const full = variants.length >= MAX_VARIANTS;
  const update = (id: string, patch: Partial<VariantDraft>) => onChange(variants.map((v) => (v.id === id ? { ...v, ...patch } : v)));
  return (
    <div className="space-y-4">
      {validation.list && <Alert>{validation.list}</Alert>}
      {validation.other.map((message) => (
        <Alert key={message}>{message}</Alert>
      ))}
      <ol className="space-y-4" aria-label="Variants">
        {variants.map((variant, index) => (
          <VariantItem
            key={variant.id}
            variant={variant}
            index={index}
            validation={validation}
            showNameErrors={showNameErrors}
            // A task with "several sizes" has at least one; "One output" is the way to none.
            removable={variants.length > 1}
            update={(patch) => update(variant.id, patch)}
            remove={() => onChange(variants.filter((v) => v.id !== variant.id))}
          />
        ))}
      </ol>
      <div className="flex flex-wrap items-center gap-3">
        <Button variant="secondary" size="sm" disabled={full} aria-describedby={full ? fullId : undefined} onClick={() => onChange([...variants, newVariant(variants)])}>
          <PlusIcon className="h-3.5 w-3.5" /> Add a variant
        </Button>
        {full && (
          <p id={fullId} className="text-xs text-slate-500">
            A task has at most {MAX_VARIANTS} variants.
          </p>
        )}
      </div>
    </div>
  );
}

function VariantItem({
  variant,
  index,
  validation,
  showNameErrors,
  removable,
  update,
  remove,
}: {
  variant: VariantDraft;
  index: number;
  validation: VariantsValidation;
  showNameErrors: boolean;
  removable: boolean;
  update(patch: Partial<VariantDraft>): void;
  remove(): void;
}) {
  const headingId = useId();
  const errors = validation.variants[variant.id];
  const title = `Variant ${index + 1}`;
  return (
    <li data-testid="variant" className="rounded-lg bg-white p-3 ring-1 ring-slate-300 sm:p-4">
      <div role="group" aria-labelledby={headingId}>
        <div className="mb-3 flex items-center gap-2">
          <h3 id={headingId} className="flex-1 text-sm font-semibold text-slate-900">
            {title}
          </h3>
          <Button variant="ghost" size="sm" disabled={!removable} title={removable ? undefined : "Choose “One output” for a single output"} onClick={remove} aria-label={`Remove ${title.toLowerCase()}`}>
            <XIcon className="h-3.5 w-3.5" /> Remove
          </Button>
        </div>
        <div className="space-y-4">
          <TextField
            label="Name"
            value={variant.name}
            className="sm:max-w-xs"
            error={showNameErrors ? (errors?.name ?? undefined) : undefined}
            hint="Names its result. Lower-case letters, digits, - and _."
            onChange={(e) => update({ name: e.target.value })}
          />
          <div>
            <h4 className="mb-2 text-xs font-semibold tracking-wide text-slate-500 uppercase">Its steps, after the task&apos;s</h4>
            {errors?.list && (
              <div className="mb-3">
                <Alert>{errors.list}</Alert>
              </div>
            )}
            {errors?.other.map((message) => (
              <div key={message} className="mb-3">
                <Alert>{message}</Alert>
              </div>
            ))}
            <OperationBuilder
              label={`Steps of ${title.toLowerCase()}`}
              emptyText="No steps of its own: the task's steps alone, in this variant's output."
              operations={variant.operations}
              errors={errors?.operations ?? {}}
              showErrors
              onChange={(operations) => update({ operations })}
              onAdd={(kind) => update({ operations: [...variant.operations, newOperation(kind)] })}
            />
          </div>
          <div className="space-y-3">
            <h4 className="text-xs font-semibold tracking-wide text-slate-500 uppercase">Its output</h4>
            <OutputFields output={variant.output} errors={errors?.output ?? {}} onChange={(output) => update({ output })} />
          </div>
        </div>
      </div>
    </li>
  );
}
