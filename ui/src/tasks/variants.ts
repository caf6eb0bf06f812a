// Variants on the new-task page: several named outputs of one task (CreateTaskRequest.variants),
// each with its own steps (after the task's) and its own output. Drafts as the form holds them,
// their default names, which of them repeat a name, and the request fields they become. Their
// validation is draftValidation.ts's (the proto's rules); nothing here repeats a limit but by
// reading it from the proto.
import { create, getOption } from "@bufbuild/protobuf";
import { field as fieldRules } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import type { Operation, Variant } from "../gen/pixelflow/v1/task_pb";
import { CreateTaskRequestSchema, VariantSchema } from "../gen/pixelflow/v1/task_pb";
import type { OperationDraft, OutputDraft } from "./operations";
import { DEFAULT_OUTPUT, newOperation, outputToProto, toProto } from "./operations";

export interface VariantDraft {
  id: string;
  name: string;
  operations: OperationDraft[];
  output: OutputDraft;
}

/** How many variants a task may have: the proto's `repeated.max_items` on CreateTaskRequest. */
export const MAX_VARIANTS = (() => {
  const rules = getOption(CreateTaskRequestSchema.field.variants, fieldRules);
  return rules.type.case === "repeated" ? Number(rules.type.value.maxItems ?? Infinity) : Infinity;
})();

// What "several sizes" usually means: a thumbnail, a page-width image and a large one. A
// variant added after these is named by its number (`size-4`), which the user is free to change.
export const DEFAULT_SIZES: readonly { name: string; width: number }[] = [
  { name: "small", width: 320 },
  { name: "medium", width: 800 },
  { name: "large", width: 1600 },
];
const FALLBACK_WIDTH = 800;

/** A name no variant in `taken` has: the first unused default size's, else `size-N`. */
export function defaultName(taken: readonly string[]): string {
  const used = new Set(taken);
  const free = DEFAULT_SIZES.find((size) => !used.has(size.name));
  if (free) return free.name;
  for (let n = taken.length + 1; ; n++) if (!used.has(`size-${n}`)) return `size-${n}`;
}

let nextId = 0;
/** A new variant next to `existing`: an unused name and a resize to the width that goes with it. */
export function newVariant(existing: readonly VariantDraft[]): VariantDraft {
  const name = defaultName(existing.map((variant) => variant.name));
  const width = DEFAULT_SIZES.find((size) => size.name === name)?.width ?? FALLBACK_WIDTH;
  const resize = { ...newOperation("resize"), width: String(width) } as OperationDraft;
  return { id: `variant-${++nextId}`, name, operations: [resize], output: DEFAULT_OUTPUT };
}

/** The variants "Several sizes" starts with: every default size. */
export function initialVariants(): VariantDraft[] {
  const variants: VariantDraft[] = [];
  for (let i = 0; i < DEFAULT_SIZES.length; i++) variants.push(newVariant(variants));
  return variants;
}

/** The ids of the variants whose name an earlier one already has: those are the ones to fix
 * (the proto's `create_task.variants_unique` names only the list). */
export function repeatedNames(variants: readonly VariantDraft[]): Set<string> {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const variant of variants) {
    if (seen.has(variant.name)) repeated.add(variant.id);
    seen.add(variant.name);
  }
  return repeated;
}

/** The proto message for a draft that passed validation. */
export function variantToProto(variant: VariantDraft): Variant {
  return create(VariantSchema, {
    name: variant.name,
    operations: variant.operations.map(toProto),
    output: outputToProto(variant.output),
  });
}

/** The pipeline fields of a CreateTask request with variants: the task's own operations (run
 * once, before every variant's) and the variants, and no task `output` (the proto's
 * `create_task.variants_have_output`: each variant has its own). */
export function variantsPipeline(
  operations: readonly OperationDraft[],
  variants: readonly VariantDraft[],
): { operations: Operation[]; variants: Variant[] } {
  return { operations: operations.map(toProto), variants: variants.map(variantToProto) };
}

/** Where a server violation's path points among the variants: `variants[1].name` → variant 1,
 * rest `name`; `variants` → the list itself (index null); anything else is not a variant's. */
export function variantPath(field: string): { index: number | null; rest: string } | null {
  if (field === "variants") return { index: null, rest: "" };
  const match = /^variants\[(\d+)\](?:\.(.*))?$/.exec(field);
  return match ? { index: Number(match[1]), rest: match[2] ?? "" } : null;
}
