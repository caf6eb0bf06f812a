import { readFileSync } from "node:fs";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CreateTaskRequestSchema } from "../gen/pixelflow/v1/task_pb";
import { violationsOf } from "./validation";

interface Case {
  name: string;
  request: JsonValue;
  violations: [string, string][];
}

// The same table the server's test reads (tests/unit/test_contract_table.py).
const table = JSON.parse(
  readFileSync(new URL("../../../tests/contract/create_task_requests.json", import.meta.url), "utf8"),
) as { cases: Case[] };

describe("the shared table of CreateTask requests", () => {
  it.each(table.cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const request = fromJson(CreateTaskRequestSchema, c.request);
    const found = violationsOf(CreateTaskRequestSchema, request).map((v) => [v.field, v.rule]);
    const sort = (pairs: string[][]) => pairs.map((p) => p.join(" ")).sort();
    expect(sort(found)).toEqual(sort(c.violations));
  });
});
