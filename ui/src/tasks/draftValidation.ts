// Validation of the builder's drafts: whether each input's text is a number is the form's to say;
// every rule about the values is the proto's (buf.validate annotations, checked by protovalidate
// exactly as the server checks them: validation.ts). Only the new-task and presets pages import
// this, so the validator (CEL, RE2) loads with them alone.
import { create } from "@bufbuild/protobuf";
import { CreatePresetRequestSchema } from "../gen/pixelflow/v1/preset_pb";
import { CreateTaskRequestSchema, OperationSchema, OutputOptionsSchema, VariantSchema } from "../gen/pixelflow/v1/task_pb";
import type { FieldErrors, OperationDraft, OperationKind, OutputDraft } from "./operations";
import { MAX_OPERATIONS, outputToProto, parseNumber, toProto } from "./operations";
import { type Violation, violationsOf } from "./validation";
import { type VariantDraft, repeatedNames, variantPath } from "./variants";

export interface ValidationResult {
  /** Errors of the list itself (too many operations). */
  list: string | null;
  /** One entry per operation, by its id. */
  operations: Record<string, FieldErrors>;
  output: FieldErrors;
  /** What no form field shows (the server's verdict on the source, say). */
  other: string[];
  valid: boolean;
}

/** The drafts checked as the server will check them; `server` adds the server's own verdict
 * (the field violations of an INVALID_ARGUMENT), placed on the same fields. */
export function validate(
  operations: readonly OperationDraft[],
  output: OutputDraft,
  server: readonly Violation[] = [],
): ValidationResult {
  const perOperation: Record<string, FieldErrors> = {};
  for (const operation of operations) perOperation[operation.id] = validateOperation(operation);
  const outputErrors = validateOutput(output);
  const result: ValidationResult = { list: null, operations: perOperation, output: outputErrors, other: [], valid: true };
  const request = create(CreateTaskRequestSchema, {
    source: { case: "uploadId", value: PLACEHOLDER_ID },
    operations: operations.map(() => PLACEHOLDER_OPERATION),
  });
  const listed = violationsOf(CreateTaskRequestSchema, request).find((violation) => violation.field === "operations");
  if (listed) result.list = `at most ${MAX_OPERATIONS} operations are allowed, got ${operations.length}`;
  for (const violation of server) place(violation, operations, result);
  result.valid =
    result.list === null &&
    result.other.length === 0 &&
    Object.values(perOperation).every((errors) => Object.keys(errors).length === 0) &&
    Object.keys(outputErrors).length === 0;
  return result;
}

// Stand-ins for what a check of a list's shape (its length, its names) does not look at.
const PLACEHOLDER_ID = "0".repeat(32);
const PLACEHOLDER_OPERATION = create(OperationSchema, { kind: { case: "grayscale", value: {} } });

/** One variant's errors: its name, its steps and its output, placed as the task's are. */
export interface VariantValidation extends Omit<ValidationResult, "valid"> {
  name: string | null;
}

export interface VariantsValidation {
  /** Errors of the list itself (too many variants). */
  list: string | null;
  /** One entry per variant, by its id. */
  variants: Record<string, VariantValidation>;
  /** What no variant's field shows. */
  other: string[];
  valid: boolean;
}

/** The variants checked as the server will check them (each one's name, steps and output, the
 * list's length and its names' uniqueness); `server` adds the server's violations whose path is
 * a variant's (`variants[1].name`), placed on that variant's fields. */
export function validateVariants(variants: readonly VariantDraft[], server: readonly Violation[] = []): VariantsValidation {
  const result: VariantsValidation = { list: null, variants: {}, other: [], valid: true };
  for (const variant of variants) result.variants[variant.id] = validateVariant(variant);
  // The list's own rules, on a request holding only the names (every other rule is checked above).
  const request = create(CreateTaskRequestSchema, {
    source: { case: "uploadId", value: PLACEHOLDER_ID },
    variants: variants.map((variant) => create(VariantSchema, { name: variant.name })),
  });
  const repeated = repeatedNames(variants);
  const nameError = (id: string, message: string) => {
    const errors = result.variants[id];
    if (errors && errors.name !== message) errors.name = errors.name ? `${errors.name}; ${message}` : message;
  };
  // The list's rules name only `variants`: a repeated name goes on each variant that repeats one.
  const placeOnList = (violation: Violation) => {
    if (violation.rule === "create_task.variants_unique" && repeated.size > 0) for (const id of repeated) nameError(id, violation.message);
    else if (violation.rule === "repeated.max_items") result.list = violation.message;
    else result.other.push(violation.message);
  };
  for (const violation of violationsOf(CreateTaskRequestSchema, request)) if (violation.field === "variants") placeOnList(violation);
  for (const violation of server) {
    const path = variantPath(violation.field);
    if (!path) continue;
    if (path.index === null) {
      placeOnList(violation);
      continue;
    }
    const target = variants[path.index];
    const errors = target && result.variants[target.id];
    if (!target || !errors) result.other.push(`${violation.field}: ${violation.message}`);
    else if (path.rest === "name") nameError(target.id, violation.message);
    else place({ ...violation, field: path.rest }, target.operations, errors);
  }
  result.valid =
    result.list === null &&
    result.other.length === 0 &&
    Object.values(result.variants).every(
      (errors) =>
        errors.name === null &&
        errors.list === null &&
        errors.other.length === 0 &&
        Object.values(errors.operations).every((fields) => Object.keys(fields).length === 0) &&
        Object.keys(errors.output).length === 0,
    );
  return result;
}

/** One variant on its own: its name's rule, its list of steps, each step, its output. */
function validateVariant(variant: VariantDraft): VariantValidation {
  const operations: Record<string, FieldErrors> = {};
  for (const operation of variant.operations) operations[operation.id] = validateOperation(operation);
  const errors: VariantValidation = { name: null, list: null, operations, output: validateOutput(variant.output), other: [] };
  const shape = create(VariantSchema, { name: variant.name, operations: variant.operations.map(() => PLACEHOLDER_OPERATION) });
  for (const violation of violationsOf(VariantSchema, shape)) {
    if (violation.field === "name") errors.name = violation.message;
    else if (violation.field === "operations") errors.list = violation.message;
  }
  return errors;
}

/** What is wrong with a preset's name, by the proto's `preset_name` rule; null when it is fine. */
export function validatePresetName(name: string): string | null {
  const request = create(CreatePresetRequestSchema, { name });
  return violationsOf(CreatePresetRequestSchema, request).find((violation) => violation.field === "name")?.message ?? null;
}

export function validateOperation(operation: OperationDraft): FieldErrors {
  const errors = textErrors(operation);
  if (Object.keys(errors).length > 0) return errors;
  for (const violation of violationsOf(OperationSchema, toProto(operation))) {
    addError(errors, formField(violation.field.split(".").slice(1), violation.rule), violation.message);
  }
  return errors;
}

export function validateOutput(output: OutputDraft): FieldErrors {
  const errors: FieldErrors = {};
  const quality = parseNumber(output.quality);
  if (quality !== undefined && !(Number.isInteger(quality) && quality >= 0)) {
    errors.quality = `must be a whole number, got ${output.quality.trim()}`;
    return errors;
  }
  for (const violation of violationsOf(OutputOptionsSchema, outputToProto(output))) {
    addError(errors, formField(violation.field.split("."), violation.rule), violation.message);
  }
  return errors;
}

// Rules about a message as a whole (CEL over several fields), by the form field that shows them.
const RULE_FIELDS: Record<string, string> = {
  "resize.size_required": "width",
  "resize.gravity_needs_cover": "gravity",
  "crop.box_needs_left_and_top": "left",
  "crop.box_or_gravity": "gravity",
  "output.lossless_needs_format": "format",
  "output.lossless_format": "lossless",
};

/** The form field of a path inside one operation or the output options (proto names); a rule
 * about the message as a whole (an empty path) goes where RULE_FIELDS puts it. */
function formField(path: readonly string[], rule: string): string {
  const name = path[path.length - 1];
  if (name === undefined || name === "") return RULE_FIELDS[rule] ?? "";
  return name.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}

/** A server violation on the field it names: `operations[2].crop.width`, `output.quality`, else other. */
function place(violation: Violation, operations: readonly OperationDraft[], result: Omit<ValidationResult, "valid">): void {
  const [head, ...rest] = violation.field.split(".");
  const index = /^operations\[(\d+)\]$/.exec(head ?? "");
  const target = index ? operations[Number(index[1])] : undefined;
  if (target) {
    addError((result.operations[target.id] ??= {}), formField(rest.slice(1), violation.rule), violation.message);
  } else if (head === "output") {
    addError(result.output, formField(rest, violation.rule), violation.message);
  } else {
    result.other.push(violation.field ? `${violation.field}: ${violation.message}` : violation.message);
  }
}

function addError(errors: FieldErrors, name: string, message: string): void {
  errors[name] = errors[name] ? `${errors[name]}; ${message}` : message;
}

// Inputs whose text must be a whole number (pixels), and those that take any number.
const WHOLE: Partial<Record<OperationKind, readonly string[]>> = {
  resize: ["width", "height"],
  crop: ["width", "height", "left", "top"],
  watermark: ["margin"],
};
const DECIMAL: Partial<Record<OperationKind, readonly string[]>> = {
  rotate: ["angle"],
  blur: ["sigma"],
  sharpen: ["sigma", "amount"],
  adjust: ["brightness", "contrast", "saturation"],
  watermark: ["opacity", "scale"],
};

/** What the proto cannot see: text in a number field, a fraction or a sign in a pixel count. */
function textErrors(operation: OperationDraft): FieldErrors {
  const errors: FieldErrors = {};
  const fields = operation as unknown as Record<string, string>;
  for (const name of WHOLE[operation.kind] ?? []) {
    const value = parseNumber(fields[name] ?? "");
    if (value !== undefined && !(Number.isInteger(value) && value >= 0)) {
      errors[name] = `must be a whole number of pixels, got ${(fields[name] ?? "").trim()}`;
    }
  }
  for (const name of DECIMAL[operation.kind] ?? []) {
    if (Number.isNaN(parseNumber(fields[name] ?? ""))) errors[name] = `must be a number, got ${(fields[name] ?? "").trim()}`;
  }
  // An empty angle is a step left half-filled (0° would be valid, and do nothing).
  if (operation.kind === "rotate" && operation.angle.trim() === "") errors.angle = "required";
  if (operation.kind === "crop" && operation.mode === "box" && operation.left.trim() === "" && operation.top.trim() === "") {
    errors.left = "give both left and top for a crop box, or choose a gravity";
  }
  return errors;
}

