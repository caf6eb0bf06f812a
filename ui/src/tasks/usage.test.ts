import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { QuotaLimit, QuotaUsageSchema } from "../gen/pixelflow/v1/quota_pb";
import { usageRow } from "./usage";

describe("usageRow", () => {
  it("reads counts as 'used of limit' with the share used", () => {
    const row = usageRow(create(QuotaUsageSchema, { limit: QuotaLimit.ACTIVE_TASKS, name: "active_tasks", value: 4n, used: 1n }));
    expect(row).toEqual({ name: "active_tasks", label: "Active tasks", text: "1 of 4", ratio: 0.25, overridden: false });
  });

  it("shows bytes as sizes, a zero limit as full, and the upload bound alone", () => {
    const stored = usageRow(create(QuotaUsageSchema, { name: "stored_bytes", value: 0n, used: 0n, overridden: true }));
    expect(stored.ratio).toBe(1);
    expect(stored.overridden).toBe(true);
    const upload = usageRow(create(QuotaUsageSchema, { name: "max_upload_bytes", value: 2048n }));
    expect(upload.ratio).toBeNull();
    expect(upload.text).not.toContain("of");
  });
});
