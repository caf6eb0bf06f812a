import { describe, expect, it } from "vitest";
import { TaskStatus } from "../gen/pixelflow/v1/task_pb";
import { driftNotice, driftedIds, matchesFilter } from "./status";

describe("a filtered list and live status changes", () => {
  it("keeps every status when there is no filter", () => {
    for (const status of [TaskStatus.PENDING, TaskStatus.PROCESSING, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED]) {
      expect(matchesFilter(TaskStatus.UNSPECIFIED, status)).toBe(true);
    }
  });
  it("matches only the filtered status", () => {
    expect(matchesFilter(TaskStatus.PROCESSING, TaskStatus.PROCESSING)).toBe(true);
    expect(matchesFilter(TaskStatus.PROCESSING, TaskStatus.COMPLETED)).toBe(false);
    expect(matchesFilter(TaskStatus.PENDING, TaskStatus.PROCESSING)).toBe(false);
  });
  it("finds the rows that left the filter, in list order", () => {
    const rows = [
      { id: "a", status: TaskStatus.COMPLETED },
      { id: "b", status: TaskStatus.PROCESSING },
      { id: "c", status: TaskStatus.CANCELLED },
    ];
    expect(driftedIds(TaskStatus.PROCESSING, rows)).toEqual(["a", "c"]);
    expect(driftedIds(TaskStatus.UNSPECIFIED, rows)).toEqual([]);
  });
  it("says how many rows left the filter", () => {
    expect(driftNotice(TaskStatus.PROCESSING, 0)).toBeNull();
    expect(driftNotice(TaskStatus.UNSPECIFIED, 3)).toBeNull();
    expect(driftNotice(TaskStatus.PROCESSING, 1)).toBe("1 task is no longer processing.");
    expect(driftNotice(TaskStatus.PENDING, 2)).toBe("2 tasks are no longer pending.");
  });
});
