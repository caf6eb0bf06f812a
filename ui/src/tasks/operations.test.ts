import { describe, expect, it } from "vitest";
import { ImageFormat } from "../gen/pixelflow/v1/task_pb";
import { formatG } from "../lib/format";
import type { OperationDraft, OutputDraft } from "./operations";
import {
  DEFAULT_OUTPUT,
  MAX_OPERATIONS,
  describeOperation,
  newOperation,
  outputToProto,
  toProto,
} from "./operations";
import { validate, validateOperation, validateOutput } from "./draftValidation";

function op<K extends OperationDraft["kind"]>(kind: K, fields: Partial<Extract<OperationDraft, { kind: K }>> = {}): OperationDraft {
  return { ...newOperation(kind), ...fields } as OperationDraft;
}
const output = (fields: Partial<OutputDraft> = {}): OutputDraft => ({ ...DEFAULT_OUTPUT, ...fields });
const BLUR = "must be greater than or equal to 0.3 and less than or equal to 100";

describe("formatG mirrors Python's format(x, 'g')", () => {
  it.each([
    [0.3, "0.3"],
    [100, "100"],
    [-360, "-360"],
    [360.5, "360.5"],
    [1e-5, "1e-05"],
    [123456789, "1.23457e+08"],
    [0.0001, "0.0001"],
    [100000, "100000"],
    [1000000, "1e+06"],
  ])("%s → %s", (value, expected) => {
    expect(formatG(value)).toBe(expected);
  });
});

describe("resize", () => {
  it("accepts a width alone, a height alone, or both", () => {
    expect(validateOperation(op("resize", { width: "800", height: "" }))).toEqual({});
    expect(validateOperation(op("resize", { width: "", height: "600" }))).toEqual({});
    expect(validateOperation(op("resize", { width: "0", height: "600" }))).toEqual({});
    expect(validateOperation(op("resize", { width: "10000", height: "10000" }))).toEqual({});
  });
  it("needs at least one side", () => {
    expect(validateOperation(op("resize", { width: "", height: "" }))).toEqual({ width: "set width, height or both (above 0)" });
    expect(validateOperation(op("resize", { width: "0", height: "0" }))).toEqual({ width: "set width, height or both (above 0)" });
  });
  it("caps each side at 10000 px (the proto's rule)", () => {
    expect(validateOperation(op("resize", { width: "10001" }))).toEqual({ width: "must be less than or equal to 10000" });
    expect(validateOperation(op("resize", { width: "5", height: "20000" }))).toEqual({ height: "must be less than or equal to 10000" });
  });
  it("refuses fractions, negatives and text", () => {
    expect(validateOperation(op("resize", { width: "1.5" })).width).toMatch(/whole number/);
    expect(validateOperation(op("resize", { width: "-3" })).width).toMatch(/whole number/);
    expect(validateOperation(op("resize", { width: "abc" })).width).toMatch(/whole number/);
  });
  it("checks the background colour with the proto's colour rule", () => {
    for (const good of ["#fff", "#FFFFFF", "#11223344", ""]) {
      expect(validateOperation(op("resize", { background: good }))).toEqual({});
    }
    expect(validateOperation(op("resize", { background: "red" }))).toEqual({
      background: 'must be a colour, "#rgb", "#rrggbb" or "#rrggbbaa"',
    });
    expect(validateOperation(op("resize", { background: "#12345" })).background).toBeDefined();
  });
});

describe("crop", () => {
  it("needs a width and a height above 0", () => {
    expect(validateOperation(op("crop", { width: "0", height: "10" }))).toEqual({ width: "must be greater than 0 and less than or equal to 10000" });
    expect(validateOperation(op("crop", { width: "10", height: "" }))).toEqual({ height: "must be greater than 0 and less than or equal to 10000" });
    expect(validateOperation(op("crop", { width: "10", height: "10" }))).toEqual({});
  });
  it("a box needs both left and top", () => {
    const message = "give both left and top for a crop box, or neither for gravity";
    expect(validateOperation(op("crop", { width: "10", height: "10", mode: "box", left: "5", top: "" }))).toEqual({ left: message });
    expect(validateOperation(op("crop", { width: "10", height: "10", mode: "box", left: "", top: "5" }))).toEqual({ left: message });
    expect(validateOperation(op("crop", { width: "10", height: "10", mode: "box", left: "0", top: "0" }))).toEqual({});
  });
  it("builds a box crop without gravity and a gravity crop without a box", () => {
    const box = toProto(op("crop", { width: "10", height: "20", mode: "box", left: "0", top: "3", gravity: "north" }));
    expect(box.kind.case).toBe("crop");
    if (box.kind.case === "crop") {
      expect(box.kind.value.left).toBe(0);
      expect(box.kind.value.top).toBe(3);
      expect(box.kind.value.gravity).toBe(0);
    }
    const gravity = toProto(op("crop", { width: "10", height: "20", mode: "gravity", left: "4", top: "4", gravity: "north" }));
    if (gravity.kind.case === "crop") {
      expect(gravity.kind.value.left).toBeUndefined();
      expect(gravity.kind.value.gravity).toBe(2);
    }
    const smart = toProto(op("crop", { width: "10", height: "20", mode: "gravity", gravity: "smart" }));
    if (smart.kind.case === "crop") {
      expect(smart.kind.value.gravity).toBe(10);
      expect(describeOperation(smart)).toBe("Crop 10×20 (smart)");
    }
  });
});

describe("resize cover gravity", () => {
  it("sends what cover keeps, and no gravity with another fit", () => {
    const cover = toProto(op("resize", { width: "100", height: "100", fit: "cover", gravity: "smart" }));
    if (cover.kind.case === "resize") expect(cover.kind.value.gravity).toBe(10);
    expect(describeOperation(cover)).toBe("Resize 100×100 (cover, smart)");
    const contain = toProto(op("resize", { width: "100", height: "100", fit: "contain", gravity: "north" }));
    if (contain.kind.case === "resize") expect(contain.kind.value.gravity).toBe(0);
  });
});

describe("rotate, blur, sharpen, adjust", () => {
  it("rotate: -360 to 360", () => {
    expect(validateOperation(op("rotate", { angle: "-360" }))).toEqual({});
    expect(validateOperation(op("rotate", { angle: "45.5" }))).toEqual({});
    expect(validateOperation(op("rotate", { angle: "361" }))).toEqual({ angle: "must be greater than or equal to -360 and less than or equal to 360" });
    expect(validateOperation(op("rotate", { angle: "" }))).toEqual({ angle: "required" });
  });
  it("blur: 0.3 to 100, required", () => {
    expect(validateOperation(op("blur", { sigma: "0.3" }))).toEqual({});
    expect(validateOperation(op("blur", { sigma: "0.1" }))).toEqual({ sigma: BLUR });
    expect(validateOperation(op("blur", { sigma: "0" }))).toEqual({ sigma: BLUR });
    expect(validateOperation(op("blur", { sigma: "1e9" }))).toEqual({ sigma: BLUR });
    expect(validateOperation(op("blur", { sigma: "Infinity" }))).toEqual({ sigma: `${BLUR}; must be finite` });
  });
  it("sharpen: empty or 0 means the default; else 0.3–10 and 0–1000", () => {
    expect(validateOperation(op("sharpen", { sigma: "", amount: "" }))).toEqual({});
    expect(validateOperation(op("sharpen", { sigma: "0", amount: "0" }))).toEqual({});
    expect(validateOperation(op("sharpen", { sigma: "0.2" }))).toEqual({ sigma: "must be greater than or equal to 0.3 and less than or equal to 10" });
    expect(validateOperation(op("sharpen", { amount: "1001" }))).toEqual({ amount: "must be greater than 0 and less than or equal to 1000" });
  });
  it("adjust: each factor 0 to 10, unset means unchanged", () => {
    expect(validateOperation(op("adjust"))).toEqual({});
    expect(validateOperation(op("adjust", { brightness: "0", contrast: "10", saturation: "1.5" }))).toEqual({});
    expect(validateOperation(op("adjust", { contrast: "11" }))).toEqual({ contrast: "must be a factor from 0 to 10" });
    expect(validateOperation(op("adjust", { saturation: "-1" }))).toEqual({ saturation: "must be a factor from 0 to 10" });
    const proto = toProto(op("adjust", { brightness: "1.2" }));
    if (proto.kind.case === "adjust") {
      expect(proto.kind.value.brightness).toBe(1.2);
      expect(proto.kind.value.contrast).toBeUndefined();
    }
  });
});

describe("watermark", () => {
  const id = "0123456789abcdef0123456789abcdef";
  it("needs one of the user's upload ids and checks the rest as the server does", () => {
    expect(validateOperation(op("watermark"))).toEqual({
      uploadId: "must be the 32 hexadecimal characters of an id",
    });
    expect(validateOperation(op("watermark", { uploadId: id }))).toEqual({});
    expect(validateOperation(op("watermark", { uploadId: id, margin: "1001" })).margin).toBe("must be less than or equal to 1000");
    expect(validateOperation(op("watermark", { uploadId: id, opacity: "1.5" })).opacity).toBe("must be above 0 and at most 1");
    expect(validateOperation(op("watermark", { uploadId: id, scale: "-1" })).scale).toBe("must be above 0 and at most 1");
    expect(validateOperation(op("watermark", { uploadId: id, position: "smart" })).position).toBeDefined();
    expect(validateOperation(op("watermark", { uploadId: id, opacity: "0", scale: "0" }))).toEqual({});
  });
  it("converts to the proto and describes itself", () => {
    const proto = toProto(op("watermark", { uploadId: ` ${id} `, position: "north_west", margin: "8", opacity: "0.5", scale: "0.2" }));
    expect(proto.kind.case).toBe("watermark");
    if (proto.kind.case !== "watermark") return;
    expect(proto.kind.value.uploadId).toBe(id);
    expect(proto.kind.value.margin).toBe(8);
    expect(proto.kind.value.opacity).toBe(0.5);
    expect(proto.kind.value.scale).toBe(0.2);
    expect(describeOperation(proto)).toBe("Watermark 01234567… (north west, 50% opaque)");
  });
});

describe("output options", () => {
  it("quality: empty or 0 is the default, else 1–100", () => {
    expect(validateOutput(output({ quality: "" }))).toEqual({});
    expect(validateOutput(output({ quality: "0" }))).toEqual({});
    expect(validateOutput(output({ quality: "100" }))).toEqual({});
    expect(validateOutput(output({ quality: "101" }))).toEqual({ quality: "must be less than or equal to 100" });
    expect(validateOutput(output({ quality: "50.5" })).quality).toBeDefined();
  });
  it("lossless needs a format that has it", () => {
    expect(validateOutput(output({ lossless: true }))).toEqual({ format: "lossless needs an explicit output format (WEBP, AVIF, PNG, TIFF or BEST)" });
    expect(validateOutput(output({ lossless: true, format: "jpeg" }))).toEqual({ lossless: "JPEG and GIF have no lossless mode; use WEBP, AVIF, PNG, TIFF or BEST" });
    expect(validateOutput(output({ lossless: true, format: "gif" }))).toEqual({ lossless: "JPEG and GIF have no lossless mode; use WEBP, AVIF, PNG, TIFF or BEST" });
    for (const format of ["webp", "avif", "png", "tiff"] as const) expect(validateOutput(output({ lossless: true, format }))).toEqual({});
  });
  it("converts to OutputOptions", () => {
    const proto = outputToProto(output({ format: "webp", quality: "80", lossless: false, keepMetadata: true, keepColorProfile: true, firstFrameOnly: true }));
    expect(proto.format).toBe(ImageFormat.WEBP);
    expect(proto.quality).toBe(80);
    expect(proto.keepMetadata).toBe(true);
    expect(proto.keepColorProfile).toBe(true);
    expect(proto.firstFrameOnly).toBe(true);
    expect(outputToProto(output()).keepColorProfile).toBe(false);
    expect(outputToProto(output()).firstFrameOnly).toBe(false);
  });
});

describe("the whole list", () => {
  it("allows at most 20 operations", () => {
    const many = Array.from({ length: MAX_OPERATIONS + 1 }, () => op("grayscale"));
    const result = validate(many, output());
    expect(result.valid).toBe(false);
    expect(result.list).toBe("at most 20 operations are allowed, got 21");
    expect(validate(many.slice(1), output()).valid).toBe(true);
  });
  it("is invalid when any operation or the output is", () => {
    const good = op("resize", { width: "100" });
    const bad = op("blur", { sigma: "500" });
    const result = validate([good, bad], output());
    expect(result.valid).toBe(false);
    expect(result.operations[good.id]).toEqual({});
    expect(result.operations[bad.id]).toEqual({ sigma: BLUR });
    expect(validate([good], output({ quality: "0.5" })).valid).toBe(false);
  });
  it("places the server's field violations on the fields they name", () => {
    const resize = op("resize", { width: "100" });
    const result = validate([resize], output(), [
      { field: "operations[0].resize.width", rule: "uint32.lte", message: "must be less than or equal to 10000" },
      { field: "operations[0].resize", rule: "resize.gravity_needs_cover", message: "gravity applies to fit COVER only" },
      { field: "output.quality", rule: "uint32.lte", message: "must be less than or equal to 100" },
      { field: "source_url", rule: "", message: "the host is not allowed" },
    ]);
    expect(result.valid).toBe(false);
    expect(result.operations[resize.id]).toEqual({
      width: "must be less than or equal to 10000",
      gravity: "gravity applies to fit COVER only",
    });
    expect(result.output).toEqual({ quality: "must be less than or equal to 100" });
    expect(result.other).toEqual(["source_url: the host is not allowed"]);
  });
  it("keeps the order given", () => {
    const protos = [op("rotate", { angle: "90" }), op("flip", { direction: "vertical" }), op("grayscale")].map(toProto);
    expect(protos.map((p) => p.kind.case)).toEqual(["rotate", "flip", "grayscale"]);
  });
});
