import { create, equals } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ImageFormat, OperationSchema, OutputOptionsSchema } from "../gen/pixelflow/v1/task_pb";
import type { OperationDraft } from "./operations";
import { DEFAULT_OUTPUT, OPERATION_KINDS, fromProto, newOperation, outputFromProto, outputToProto, toProto } from "./operations";
import { validatePresetName } from "./draftValidation";

function op<K extends OperationDraft["kind"]>(kind: K, fields: Partial<Extract<OperationDraft, { kind: K }>> = {}): OperationDraft {
  return { ...newOperation(kind), ...fields } as OperationDraft;
}

// A saved preset is opened in the builder (fromProto) and saved again (toProto): nothing may change.
describe("a preset's operations round-trip through the builder", () => {
  const drafts: OperationDraft[] = [
    op("resize", { width: "640", height: "", fit: "cover", gravity: "smart", allowUpscale: true, background: "#fff" }),
    op("resize", { width: "", height: "300", fit: "inside" }),
    op("crop", { width: "100", height: "50", mode: "box", left: "0", top: "7" }),
    op("crop", { width: "100", height: "50", mode: "gravity", gravity: "north_east" }),
    op("rotate", { angle: "-12.5", background: "#00000080" }),
    op("flip", { direction: "vertical" }),
    op("grayscale"),
    op("blur", { sigma: "2.5" }),
    op("sharpen", { sigma: "", amount: "150" }),
    op("adjust", { brightness: "0", contrast: "", saturation: "1.2" }),
    op("watermark", { uploadId: "0123456789abcdef0123456789abcdef", position: "north_west", margin: "8", opacity: "0.5", scale: "" }),
  ];
  it("covers every kind of operation", () => {
    expect(new Set(drafts.map((d) => d.kind))).toEqual(new Set(OPERATION_KINDS.map((k) => k.kind)));
  });
  it.each(drafts.map((d) => [d.kind, d] as const))("%s", (_kind, draft) => {
    const proto = toProto(draft);
    const reopened = fromProto(proto);
    expect(reopened.kind).toBe(draft.kind);
    expect(reopened.id).not.toBe(draft.id); // a fresh row in the builder
    expect(equals(OperationSchema, toProto(reopened), proto)).toBe(true);
  });
  it("keeps an adjust's explicit 0 apart from unset", () => {
    const reopened = fromProto(toProto(op("adjust", { brightness: "0" })));
    expect(reopened).toMatchObject({ brightness: "0", contrast: "", saturation: "" });
  });
});

describe("a preset's output round-trips through the form", () => {
  it("keeps every option", () => {
    const draft = { format: "webp", quality: "70", lossless: true, keepMetadata: true, keepColorProfile: false, firstFrameOnly: true } as const;
    expect(outputFromProto(outputToProto(draft))).toEqual(draft);
  });
  it("reads an unset output as the defaults", () => {
    expect(outputFromProto(undefined)).toEqual(DEFAULT_OUTPUT);
    expect(outputFromProto(create(OutputOptionsSchema, { format: ImageFormat.UNSPECIFIED }))).toEqual(DEFAULT_OUTPUT);
  });
});

describe("preset names follow the proto's preset_name rule", () => {
  it.each(["thumb", "hero-webp", "a_1", "9", "a".repeat(64)])("accepts %s", (name) => {
    expect(validatePresetName(name)).toBeNull();
  });
  it.each(["", "Thumb", "-lead", "_lead", "with space", "dots.no", "é", "a".repeat(65)])("refuses %j", (name) => {
    expect(validatePresetName(name)).toMatch(/lower-case letters, digits/);
  });
});
