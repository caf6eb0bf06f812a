// The operation builder's model: drafts as the form holds them (strings from inputs), their
// conversion to the proto messages CreateTask takes, and their validation: whether each input's
// text is a number is the form's to say; every rule about the values is the proto's
// (buf.validate annotations, checked here by protovalidate exactly as the server checks them:
// tasks/validation.ts). Nothing here repeats a limit.
import { create, getOption } from "@bufbuild/protobuf";
import { field as fieldRules } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import type { Operation, OutputOptions } from "../gen/pixelflow/v1/task_pb";
import {
  CreateTaskRequestSchema,
  FlipDirection,
  Gravity,
  ImageFormat,
  OperationSchema,
  OutputOptionsSchema,
  ResizeFit,
} from "../gen/pixelflow/v1/task_pb";
import { formatG } from "../lib/format";
import { type Violation, violationsOf } from "./validation";

/** How many operations a task may have: the proto's `repeated.max_items` on CreateTaskRequest. */
export const MAX_OPERATIONS = (() => {
  const rules = getOption(CreateTaskRequestSchema.field.operations, fieldRules);
  return rules.type.case === "repeated" ? Number(rules.type.value.maxItems ?? Infinity) : Infinity;
})();

export type FitName = "contain" | "cover" | "fill" | "inside" | "outside";
export type GravityName =
  | "center"
  | "north"
  | "north_east"
  | "east"
  | "south_east"
  | "south"
  | "south_west"
  | "west"
  | "north_west"
  | "smart";
export type FormatName = "source" | "jpeg" | "png" | "webp" | "avif" | "gif" | "tiff" | "best";

export type OperationDraft =
  | { id: string; kind: "resize"; width: string; height: string; fit: FitName; allowUpscale: boolean; background: string; gravity: GravityName }
  | {
      id: string;
      kind: "crop";
      width: string;
      height: string;
      mode: "gravity" | "box";
      gravity: GravityName;
      left: string;
      top: string;
    }
  | { id: string; kind: "rotate"; angle: string; background: string }
  | { id: string; kind: "flip"; direction: "horizontal" | "vertical" }
  | { id: string; kind: "grayscale" }
  | { id: string; kind: "blur"; sigma: string }
  | { id: string; kind: "sharpen"; sigma: string; amount: string }
  | { id: string; kind: "adjust"; brightness: string; contrast: string; saturation: string }
  | { id: string; kind: "watermark"; uploadId: string; position: GravityName; margin: string; opacity: string; scale: string };

export type OperationKind = OperationDraft["kind"];

export const OPERATION_KINDS: readonly { kind: OperationKind; label: string; description: string }[] = [
  { kind: "resize", label: "Resize", description: "Scale to a width and/or height" },
  { kind: "crop", label: "Crop", description: "Cut out a region" },
  { kind: "rotate", label: "Rotate", description: "Turn by any angle" },
  { kind: "flip", label: "Flip", description: "Mirror horizontally or vertically" },
  { kind: "grayscale", label: "Grayscale", description: "Remove colour" },
  { kind: "blur", label: "Blur", description: "Gaussian blur" },
  { kind: "sharpen", label: "Sharpen", description: "Unsharp mask" },
  { kind: "adjust", label: "Adjust", description: "Brightness, contrast, saturation" },
  { kind: "watermark", label: "Watermark", description: "Lay one of your uploads over the image" },
];

export interface OutputDraft {
  format: FormatName;
  quality: string;
  lossless: boolean;
  keepMetadata: boolean;
  keepColorProfile: boolean;
  firstFrameOnly: boolean;
}

export const DEFAULT_OUTPUT: OutputDraft = { format: "source", quality: "", lossless: false, keepMetadata: false, keepColorProfile: false, firstFrameOnly: false };

let nextId = 0;
export function newOperation(kind: OperationKind): OperationDraft {
  const id = `op-${++nextId}`;
  switch (kind) {
    case "resize":
      return { id, kind, width: "800", height: "", fit: "contain", allowUpscale: false, background: "", gravity: "center" };
    case "crop":
      return { id, kind, width: "", height: "", mode: "gravity", gravity: "center", left: "", top: "" };
    case "rotate":
      return { id, kind, angle: "90", background: "" };
    case "flip":
      return { id, kind, direction: "horizontal" };
    case "grayscale":
      return { id, kind };
    case "blur":
      return { id, kind, sigma: "2" };
    case "sharpen":
      return { id, kind, sigma: "", amount: "" };
    case "adjust":
      return { id, kind, brightness: "", contrast: "", saturation: "" };
    case "watermark":
      return { id, kind, uploadId: "", position: "south_east", margin: "", opacity: "", scale: "" };
  }
}

/** Field name → message, for one operation (empty when valid). */
export type FieldErrors = Record<string, string>;

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
  const placeholder = create(OperationSchema, { kind: { case: "grayscale", value: {} } });
  const request = create(CreateTaskRequestSchema, {
    source: { case: "uploadId", value: "0".repeat(32) },
    operations: operations.map(() => placeholder),
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
function place(violation: Violation, operations: readonly OperationDraft[], result: ValidationResult): void {
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

/** undefined for an empty field, NaN for text that is not a number. */
export function parseNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  return Number(trimmed);
}

// ---- to the proto ------------------------------------------------------------------------------

const FITS: Record<FitName, ResizeFit> = {
  contain: ResizeFit.CONTAIN,
  cover: ResizeFit.COVER,
  fill: ResizeFit.FILL,
  inside: ResizeFit.INSIDE,
  outside: ResizeFit.OUTSIDE,
};
const GRAVITIES: Record<GravityName, Gravity> = {
  center: Gravity.CENTER,
  north: Gravity.NORTH,
  north_east: Gravity.NORTH_EAST,
  east: Gravity.EAST,
  south_east: Gravity.SOUTH_EAST,
  south: Gravity.SOUTH,
  south_west: Gravity.SOUTH_WEST,
  west: Gravity.WEST,
  north_west: Gravity.NORTH_WEST,
  smart: Gravity.SMART,
};
export const FORMATS: Record<FormatName, ImageFormat> = {
  source: ImageFormat.UNSPECIFIED,
  jpeg: ImageFormat.JPEG,
  png: ImageFormat.PNG,
  webp: ImageFormat.WEBP,
  avif: ImageFormat.AVIF,
  gif: ImageFormat.GIF,
  tiff: ImageFormat.TIFF,
  best: ImageFormat.BEST,
};

const num = (text: string): number => parseNumber(text) ?? 0;
const optionalNum = (text: string): number | undefined => parseNumber(text);

/** The proto message for a draft that passed validation. */
export function toProto(operation: OperationDraft): Operation {
  switch (operation.kind) {
    case "resize":
      return create(OperationSchema, {
        kind: {
          case: "resize",
          value: {
            width: num(operation.width),
            height: num(operation.height),
            fit: FITS[operation.fit],
            allowUpscale: operation.allowUpscale,
            background: operation.background,
            // What COVER keeps of the overflow; the server refuses a gravity with another fit.
            gravity: operation.fit === "cover" && operation.gravity !== "center" ? GRAVITIES[operation.gravity] : Gravity.UNSPECIFIED,
          },
        },
      });
    case "crop":
      return create(OperationSchema, {
        kind: {
          case: "crop",
          value:
            operation.mode === "box"
              ? { width: num(operation.width), height: num(operation.height), left: optionalNum(operation.left), top: optionalNum(operation.top) }
              : { width: num(operation.width), height: num(operation.height), gravity: GRAVITIES[operation.gravity] },
        },
      });
    case "rotate":
      return create(OperationSchema, {
        kind: { case: "rotate", value: { angle: num(operation.angle), background: operation.background } },
      });
    case "flip":
      return create(OperationSchema, {
        kind: {
          case: "flip",
          value: {
            direction: operation.direction === "horizontal" ? FlipDirection.HORIZONTAL : FlipDirection.VERTICAL,
          },
        },
      });
    case "grayscale":
      return create(OperationSchema, { kind: { case: "grayscale", value: {} } });
    case "blur":
      return create(OperationSchema, { kind: { case: "blur", value: { sigma: num(operation.sigma) } } });
    case "sharpen":
      return create(OperationSchema, {
        kind: { case: "sharpen", value: { sigma: num(operation.sigma), amount: num(operation.amount) } },
      });
    case "adjust":
      return create(OperationSchema, {
        kind: {
          case: "adjust",
          value: {
            brightness: optionalNum(operation.brightness),
            contrast: optionalNum(operation.contrast),
            saturation: optionalNum(operation.saturation),
          },
        },
      });
    case "watermark":
      return create(OperationSchema, {
        kind: {
          case: "watermark",
          value: {
            uploadId: operation.uploadId.trim(),
            position: GRAVITIES[operation.position],
            margin: num(operation.margin),
            opacity: num(operation.opacity),
            scale: num(operation.scale),
          },
        },
      });
  }
}

export function outputToProto(output: OutputDraft): OutputOptions {
  return create(OutputOptionsSchema, {
    format: FORMATS[output.format],
    quality: num(output.quality),
    lossless: output.lossless,
    keepMetadata: output.keepMetadata,
    keepColorProfile: output.keepColorProfile,
    firstFrameOnly: output.firstFrameOnly,
  });
}

/** A one-line description of a proto operation, for task lists and details. */
export function describeOperation(operation: Operation): string {
  const kind = operation.kind;
  switch (kind.case) {
    case "resize": {
      const { width, height } = kind.value;
      const fit = Object.entries(FITS).find(([, value]) => value === kind.value.fit)?.[0] ?? "contain";
      const gravity = Object.entries(GRAVITIES).find(([, value]) => value === kind.value.gravity)?.[0];
      const keeps = gravity && gravity !== "center" ? `, ${gravity.replace("_", " ")}` : "";
      return `Resize ${width || "auto"}×${height || "auto"} (${fit}${keeps}${kind.value.allowUpscale ? ", upscale" : ""})`;
    }
    case "crop": {
      const { width, height, left, top } = kind.value;
      if (left !== undefined && top !== undefined) return `Crop ${width}×${height} at ${left},${top}`;
      const gravity = Object.entries(GRAVITIES).find(([, value]) => value === kind.value.gravity)?.[0] ?? "center";
      return `Crop ${width}×${height} (${gravity.replace("_", " ")})`;
    }
    case "rotate":
      return `Rotate ${formatG(kind.value.angle)}°`;
    case "flip":
      return `Flip ${kind.value.direction === FlipDirection.VERTICAL ? "vertical" : "horizontal"}`;
    case "grayscale":
      return "Grayscale";
    case "blur":
      return `Blur σ ${formatG(kind.value.sigma)}`;
    case "sharpen":
      return `Sharpen σ ${formatG(kind.value.sigma || 1)}, ${formatG(kind.value.amount || 100)}%`;
    case "adjust": {
      const parts = (["brightness", "contrast", "saturation"] as const)
        .filter((name) => kind.value[name] !== undefined)
        .map((name) => `${name} ${formatG(kind.value[name] ?? 1)}`);
      return parts.length ? `Adjust ${parts.join(", ")}` : "Adjust (no change)";
    }
    case "watermark": {
      const position = Object.entries(GRAVITIES).find(([, value]) => value === kind.value.position)?.[0] ?? "south_east";
      const opacity = kind.value.opacity ? `, ${formatG(kind.value.opacity * 100)}% opaque` : "";
      return `Watermark ${kind.value.uploadId.slice(0, 8)}… (${position.replace("_", " ")}${opacity})`;
    }
    default:
      return "Unknown operation";
  }
}

export function formatLabel(format: ImageFormat): string {
  const name = Object.entries(FORMATS).find(([, value]) => value === format)?.[0];
  if (name === "best") return "Best (smallest)";
  return !name || name === "source" ? "Same as source" : name.toUpperCase();
}

/** The file extension for a result's content type, for download names. */
export function extensionFor(contentType: string): string {
  const subtype = contentType.split("/")[1]?.split(";")[0]?.trim() ?? "bin";
  return subtype === "jpeg" ? "jpg" : subtype;
}
