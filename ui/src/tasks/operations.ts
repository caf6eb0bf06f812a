// The operation builder's model: drafts as the form holds them (strings from inputs),
// validation that mirrors common/operations.py (same limits, same messages), and conversion
// to the proto messages CreateTask takes.
import { create } from "@bufbuild/protobuf";
import type { Operation, OutputOptions } from "../gen/pixelflow/v1/task_pb";
import {
  FlipDirection,
  Gravity,
  ImageFormat,
  OperationSchema,
  OutputOptionsSchema,
  ResizeFit,
} from "../gen/pixelflow/v1/task_pb";
import { formatG } from "../lib/format";

// ---- limits: the same numbers as common/operations.py ----------------------------------------
export const MAX_OPERATIONS = 20;
export const MAX_TARGET_DIMENSION = 10_000;
export const BLUR_SIGMA_MIN = 0.3;
export const BLUR_SIGMA_MAX = 100;
export const SHARPEN_SIGMA_MIN = 0.3;
export const SHARPEN_SIGMA_MAX = 10;
export const SHARPEN_AMOUNT_MAX = 1000;
export const ADJUST_MIN = 0;
export const ADJUST_MAX = 10;
export const ROTATE_ANGLE_MAX = 360;
export const QUALITY_MIN = 1;
export const QUALITY_MAX = 100;
export const WATERMARK_MARGIN_MAX = 1000;
const UPLOAD_ID = /^[0-9a-f]{32}$/;

const COLOUR = /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/;

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
  valid: boolean;
}

export function validate(operations: readonly OperationDraft[], output: OutputDraft): ValidationResult {
  const list =
    operations.length > MAX_OPERATIONS
      ? `at most ${MAX_OPERATIONS} operations are allowed, got ${operations.length}`
      : null;
  const perOperation: Record<string, FieldErrors> = {};
  for (const operation of operations) perOperation[operation.id] = validateOperation(operation);
  const outputErrors = validateOutput(output);
  const valid =
    list === null &&
    Object.values(perOperation).every((errors) => Object.keys(errors).length === 0) &&
    Object.keys(outputErrors).length === 0;
  return { list, operations: perOperation, output: outputErrors, valid };
}

export function validateOperation(operation: OperationDraft): FieldErrors {
  const errors: FieldErrors = {};
  switch (operation.kind) {
    case "resize": {
      const width = wholeNumber(operation.width, "width", errors, { optional: true });
      const height = wholeNumber(operation.height, "height", errors, { optional: true });
      if (!("width" in errors) && !("height" in errors) && (width ?? 0) === 0 && (height ?? 0) === 0) {
        errors.width = "set width, height or both (above 0)";
      }
      colour(operation.background, "background", errors);
      break;
    }
    case "crop": {
      for (const name of ["width", "height"] as const) {
        const value = wholeNumber(operation[name], name, errors, { optional: true });
        if (!(name in errors) && (value ?? 0) === 0) errors[name] = `crop ${name} must be above 0`;
      }
      if (operation.mode === "box") {
        const hasLeft = operation.left.trim() !== "";
        const hasTop = operation.top.trim() !== "";
        if (hasLeft !== hasTop) {
          errors[hasLeft ? "top" : "left"] = "give both left and top for a crop box, or neither for gravity";
        } else if (!hasLeft) {
          errors.left = "give both left and top for a crop box, or neither for gravity";
        }
        if (hasLeft) wholeNumber(operation.left, "left", errors, { optional: false });
        if (hasTop) wholeNumber(operation.top, "top", errors, { optional: false });
      }
      break;
    }
    case "rotate":
      decimal(operation.angle, "angle", -ROTATE_ANGLE_MAX, ROTATE_ANGLE_MAX, errors, { optional: false });
      colour(operation.background, "background", errors);
      break;
    case "flip":
    case "grayscale":
      break;
    case "blur":
      decimal(operation.sigma, "sigma", BLUR_SIGMA_MIN, BLUR_SIGMA_MAX, errors, { optional: false });
      break;
    case "sharpen":
      // 0 or empty means the default (sigma 1, amount 100%), as on the server.
      if (parseNumber(operation.sigma) !== 0) {
        decimal(operation.sigma, "sigma", SHARPEN_SIGMA_MIN, SHARPEN_SIGMA_MAX, errors, { optional: true });
      }
      if (parseNumber(operation.amount) !== 0) {
        decimal(operation.amount, "amount", 0, SHARPEN_AMOUNT_MAX, errors, { optional: true });
      }
      break;
    case "adjust":
      for (const name of ["brightness", "contrast", "saturation"] as const) {
        decimal(operation[name], name, ADJUST_MIN, ADJUST_MAX, errors, { optional: true });
      }
      break;
    case "watermark": {
      if (!UPLOAD_ID.test(operation.uploadId.trim())) {
        errors.uploadId = "upload_id must be the id of one of your uploads (32 hexadecimal characters, from CreateUpload)";
      }
      if (operation.position === "smart") errors.position = "a watermark is placed by a fixed position, not SMART";
      const margin = parseNumber(operation.margin);
      if (margin !== undefined && (!Number.isInteger(margin) || margin < 0 || margin > WATERMARK_MARGIN_MAX)) {
        errors.margin = `margin must be 0–${WATERMARK_MARGIN_MAX} px, got ${operation.margin.trim()}`;
      }
      // 0 or empty means the default (opaque; the watermark's own size), as on the server.
      for (const name of ["opacity", "scale"] as const) {
        const value = parseNumber(operation[name]);
        if (value !== undefined && value !== 0 && !(Number.isFinite(value) && value > 0 && value <= 1)) {
          errors[name] = `${name} must be above 0 and at most 1, got ${operation[name].trim()}`;
        }
      }
      break;
    }
  }
  return errors;
}

export function validateOutput(output: OutputDraft): FieldErrors {
  const errors: FieldErrors = {};
  const quality = parseNumber(output.quality);
  if (quality !== undefined && quality !== 0) {
    if (Number.isNaN(quality) || !Number.isInteger(quality) || quality < QUALITY_MIN || quality > QUALITY_MAX) {
      errors.quality = `quality must be ${QUALITY_MIN}–${QUALITY_MAX} (or 0 for the format's default), got ${output.quality.trim()}`;
    }
  }
  if (output.lossless) {
    if (output.format === "source") {
      errors.format = "lossless needs an explicit output format (WEBP, AVIF, PNG, TIFF or BEST)";
    } else if (output.format === "jpeg" || output.format === "gif") {
      errors.lossless = `${output.format.toUpperCase()} has no lossless mode; use WEBP, AVIF, PNG or TIFF`;
    }
  }
  return errors;
}

/** undefined for an empty field, NaN for text that is not a number. */
export function parseNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  return Number(trimmed);
}

function wholeNumber(
  text: string,
  name: string,
  errors: FieldErrors,
  { optional }: { optional: boolean },
): number | undefined {
  const value = parseNumber(text);
  if (value === undefined) {
    if (!optional) errors[name] = "required";
    return undefined;
  }
  if (!Number.isInteger(value) || value < 0) {
    errors[name] = `must be a whole number of pixels, got ${text.trim()}`;
  } else if (value > MAX_TARGET_DIMENSION) {
    errors[name] = `must be at most ${MAX_TARGET_DIMENSION} px, got ${value}`;
  }
  return value;
}

function decimal(
  text: string,
  name: string,
  low: number,
  high: number,
  errors: FieldErrors,
  { optional }: { optional: boolean },
): void {
  const value = parseNumber(text);
  if (value === undefined) {
    if (!optional) errors[name] = "required";
    return;
  }
  if (!Number.isFinite(value)) {
    errors[name] = Number.isNaN(value) ? `must be a number, got ${text.trim()}` : `must be a finite number, got ${formatG(value)}`;
  } else if (value < low || value > high) {
    errors[name] = `must be between ${formatG(low)} and ${formatG(high)}, got ${formatG(value)}`;
  }
}

function colour(text: string, name: string, errors: FieldErrors): void {
  if (text === "") return;
  if (!COLOUR.test(text)) errors[name] = `colour must be "#rgb", "#rrggbb" or "#rrggbbaa", got '${text}'`;
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
              ? { width: num(operation.width), height: num(operation.height), left: num(operation.left), top: num(operation.top) }
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
