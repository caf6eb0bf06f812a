import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CreateTaskRequestSchema, ImageFormat } from "../gen/pixelflow/v1/task_pb";
import { validateVariants } from "./draftValidation";
import type { OperationDraft } from "./operations";
import { newOperation } from "./operations";
import { violationsOf } from "./validation";
import type { VariantDraft } from "./variants";
import { DEFAULT_SIZES, MAX_VARIANTS, defaultName, initialVariants, newVariant, repeatedNames, variantPath, variantsPipeline } from "./variants";

function variants(...names: string[]): VariantDraft[] {
  const list: VariantDraft[] = [];
  for (const name of names) list.push({ ...newVariant(list), name });
  return list;
}

describe("default names", () => {
  it("start with the usual sizes, each with its width", () => {
    const list = initialVariants();
    expect(list.map((v) => v.name)).toEqual(["small", "medium", "large"]);
    expect(list.map((v) => (v.operations[0] as Extract<OperationDraft, { kind: "resize" }>).width)).toEqual(DEFAULT_SIZES.map((s) => String(s.width)));
    expect(new Set(list.map((v) => v.id)).size).toBe(3);
  });
  it("take the first size no variant has", () => {
    expect(defaultName(["small", "large"])).toBe("medium");
    expect(newVariant(variants("medium")).name).toBe("small");
  });
  it("number the variants after the sizes, skipping names in use", () => {
    expect(defaultName(["small", "medium", "large"])).toBe("size-4");
    expect(defaultName(["small", "medium", "large", "size-4"])).toBe("size-5");
    expect(defaultName(["size-1", "small", "medium", "large"])).toBe("size-5");
  });
  it("follow the proto's name rule", () => {
    const list = variants("small", "medium", "large");
    for (let i = 0; i < 7; i++) list.push(newVariant(list));
    expect(repeatedNames(list).size).toBe(0);
    expect(validateVariants(list).valid).toBe(true);
  });
});

describe("uniqueness", () => {
  it("marks the variants that repeat an earlier name, not the first", () => {
    const list = variants("a", "b", "a", "b", "a");
    expect([...repeatedNames(list)]).toEqual([list[2]!.id, list[3]!.id, list[4]!.id]);
  });
  it("puts the proto's message next to the repeated name only", () => {
    const list = variants("thumb", "thumb");
    const result = validateVariants(list);
    expect(result.valid).toBe(false);
    expect(result.variants[list[0]!.id]!.name).toBeNull();
    expect(result.variants[list[1]!.id]!.name).toBe("each variant needs a name of its own");
  });
});

describe("validation by the proto's rules", () => {
  it("checks each name", () => {
    const list = variants("Big Size", "ok");
    const result = validateVariants(list);
    expect(result.variants[list[0]!.id]!.name).toMatch(/lower-case letters, digits/);
    expect(result.variants[list[1]!.id]!.name).toBeNull();
  });
  it("checks each variant's steps and output where they are", () => {
    const [first, second] = variants("small", "large");
    const emptyResize = { ...newOperation("resize"), width: "", height: "" } as OperationDraft;
    const list = [
      { ...first!, operations: [emptyResize] },
      { ...second!, output: { ...second!.output, quality: "101" } },
    ];
    const result = validateVariants(list);
    expect(result.variants[list[0]!.id]!.operations[emptyResize.id]).toHaveProperty("width");
    expect(result.variants[list[1]!.id]!.output).toHaveProperty("quality");
    expect(result.valid).toBe(false);
  });
  it(`refuses more than ${MAX_VARIANTS} variants`, () => {
    const list: VariantDraft[] = [];
    for (let i = 0; i <= MAX_VARIANTS; i++) list.push(newVariant(list));
    expect(MAX_VARIANTS).toBe(10);
    expect(validateVariants(list).list).toMatch(/10/);
    expect(validateVariants(list.slice(0, MAX_VARIANTS)).list).toBeNull();
  });
});

describe("the server's violations", () => {
  it("land on the variant and field they name", () => {
    const list = variants("small", "large");
    const op = list[1]!.operations[0]!;
    const result = validateVariants(list, [
      { field: "variants[1].name", rule: "variant.name", message: "taken" },
      { field: "variants[1].operations[0].resize.width", rule: "uint32.lte", message: "too wide" },
      { field: "variants[0].output.quality", rule: "uint32.lte", message: "too good" },
      { field: "operations[0].resize.width", rule: "uint32.lte", message: "not a variant's" },
    ]);
    expect(result.variants[list[1]!.id]!.name).toBe("taken");
    expect(result.variants[list[1]!.id]!.operations[op.id]).toEqual({ width: "too wide" });
    expect(result.variants[list[0]!.id]!.output).toEqual({ quality: "too good" });
    expect(result.other).toEqual([]);
    expect(result.valid).toBe(false);
  });
  it("of the list: a repeated name on the repeating variant, once", () => {
    const list = variants("a", "a");
    const result = validateVariants(list, [{ field: "variants", rule: "create_task.variants_unique", message: "each variant needs a name of its own" }]);
    expect(result.variants[list[1]!.id]!.name).toBe("each variant needs a name of its own");
  });
  it("naming a variant the form does not have go to the page", () => {
    const result = validateVariants(variants("a"), [{ field: "variants[3].name", rule: "variant.name", message: "odd" }]);
    expect(result.other).toEqual(["variants[3].name: odd"]);
  });
  it("paths", () => {
    expect(variantPath("variants")).toEqual({ index: null, rest: "" });
    expect(variantPath("variants[2]")).toEqual({ index: 2, rest: "" });
    expect(variantPath("variants[10].operations[1].crop.width")).toEqual({ index: 10, rest: "operations[1].crop.width" });
    expect(variantPath("operations[0]")).toBeNull();
    expect(variantPath("variantsx")).toBeNull();
  });
});

describe("the request", () => {
  it("has the variants and no task output, and passes the proto's rules", () => {
    const [small, , large] = initialVariants();
    const list = [{ ...small!, output: { ...small!.output, format: "webp", quality: "70" } as const }, large!];
    const pipeline = variantsPipeline([newOperation("grayscale")], list);
    expect(pipeline).not.toHaveProperty("output");
    const request = create(CreateTaskRequestSchema, { source: { case: "uploadId", value: "0".repeat(32) }, ...pipeline });
    expect(request.output).toBeUndefined();
    expect(request.operations.map((op) => op.kind.case)).toEqual(["grayscale"]);
    expect(request.variants.map((v) => v.name)).toEqual(["small", "large"]);
    expect(request.variants[0]!.output).toMatchObject({ format: ImageFormat.WEBP, quality: 70 });
    expect(request.variants[1]!.operations[0]!.kind).toMatchObject({ case: "resize", value: { width: 1600 } });
    expect(violationsOf(CreateTaskRequestSchema, request)).toEqual([]);
  });
  it("with a task output is what the proto refuses", () => {
    const request = create(CreateTaskRequestSchema, {
      source: { case: "uploadId", value: "0".repeat(32) },
      ...variantsPipeline([], variants("a")),
      output: {},
    });
    expect(violationsOf(CreateTaskRequestSchema, request).map((v) => v.rule)).toContain("create_task.variants_have_output");
  });
});
