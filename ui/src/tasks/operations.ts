// The operation builder's model: drafts as the form holds them (strings from inputs) and their
// conversion to the proto messages CreateTask takes. Their validation is draftValidation.ts's
// (the proto's own rules, with protovalidate: loaded with the new-task page only). Nothing here
// repeats a limit.
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

// ---- from the proto (a saved preset opened for editing) ----------------------------------------

const nameOf = <T extends string>(table: Record<T, number>, value: number, fallback: T): T =>
  (Object.entries(table) as [T, number][]).find(([, v]) => v === value)?.[0] ?? fallback;
// Numbers back into the builder's text: 0 (the proto's "unset") as an empty field where empty means the default.
const text = (value: number): string => (value ? String(value) : "");
const optionalText = (value: number | undefined): string => (value === undefined ? "" : String(value));

/** The draft of a proto operation: toProto(fromProto(op)) is `op` again. */
export function fromProto(operation: Operation): OperationDraft {
  const kind = operation.kind;
  switch (kind.case) {
    case "resize": {
      const { width, height, fit, allowUpscale, background, gravity } = kind.value;
      return { ...newOperation("resize"), width: text(width), height: text(height), fit: nameOf(FITS, fit, "contain"), allowUpscale, background, gravity: nameOf(GRAVITIES, gravity, "center") } as OperationDraft;
    }
    case "crop": {
      const { width, height, left, top, gravity } = kind.value;
      const box = left !== undefined || top !== undefined;
      return { ...newOperation("crop"), width: text(width), height: text(height), mode: box ? "box" : "gravity", gravity: nameOf(GRAVITIES, gravity, "center"), left: optionalText(left), top: optionalText(top) } as OperationDraft;
    }
    case "rotate":
      return { ...newOperation("rotate"), angle: String(kind.value.angle), background: kind.value.background } as OperationDraft;
    case "flip":
      return { ...newOperation("flip"), direction: kind.value.direction === FlipDirection.VERTICAL ? "vertical" : "horizontal" } as OperationDraft;
    case "grayscale":
      return newOperation("grayscale");
    case "blur":
      return { ...newOperation("blur"), sigma: String(kind.value.sigma) } as OperationDraft;
    case "sharpen":
      return { ...newOperation("sharpen"), sigma: text(kind.value.sigma), amount: text(kind.value.amount) } as OperationDraft;
    case "adjust": {
      const { brightness, contrast, saturation } = kind.value;
      return { ...newOperation("adjust"), brightness: optionalText(brightness), contrast: optionalText(contrast), saturation: optionalText(saturation) } as OperationDraft;
    }
    case "watermark": {
      const { uploadId, position, margin, opacity, scale } = kind.value;
      return { ...newOperation("watermark"), uploadId, position: nameOf(GRAVITIES, position, "south_east"), margin: text(margin), opacity: text(opacity), scale: text(scale) } as OperationDraft;
    }
    default:
      // A kind this build does not know (a newer server): nothing it could edit.
      throw new Error("this preset has an operation this page does not know; reload to update");
  }
}

export function outputFromProto(output: OutputOptions | undefined): OutputDraft {
  if (!output) return DEFAULT_OUTPUT;
  return {
    format: nameOf(FORMATS, output.format, "source"),
    quality: text(output.quality),
    lossless: output.lossless,
    keepMetadata: output.keepMetadata,
    keepColorProfile: output.keepColorProfile,
    firstFrameOnly: output.firstFrameOnly,
  };
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
