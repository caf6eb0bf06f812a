import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_UPLOAD_BYTES as MAX_UPLOAD_BYTES, parseConfig } from "../config";
import { StreamGate } from "../tasks/streamGate";
import { checkFile } from "./Dropzone";

describe("upload checks before anything is sent", () => {
  it("accepts an image up to 25 MB", () => {
    expect(checkFile({ name: "a.png", size: MAX_UPLOAD_BYTES, type: "image/png" }, MAX_UPLOAD_BYTES)).toBeNull();
  });
  it("refuses a file over 25 MB", () => {
    expect(checkFile({ name: "big.jpg", size: MAX_UPLOAD_BYTES + 1, type: "image/jpeg" }, MAX_UPLOAD_BYTES)).toBe("big.jpg is 25 MB; the limit is 25 MB.");
    expect(checkFile({ name: "huge.jpg", size: 40 * 1024 * 1024, type: "image/jpeg" }, MAX_UPLOAD_BYTES)).toBe("huge.jpg is 40 MB; the limit is 25 MB.");
  });
  it("refuses empty files and obvious non-images", () => {
    expect(checkFile({ name: "e.png", size: 0, type: "image/png" }, MAX_UPLOAD_BYTES)).toMatch(/empty/);
    expect(checkFile({ name: "doc.pdf", size: 10, type: "application/pdf" }, MAX_UPLOAD_BYTES)).toMatch(/not an image/);
    // Unknown type: the server sniffs the bytes.
    expect(checkFile({ name: "raw", size: 10, type: "" }, MAX_UPLOAD_BYTES)).toBeNull();
  });
  it("uses the limit it is given", () => {
    const limit = 5 * 1024 * 1024;
    expect(checkFile({ name: "a.png", size: limit, type: "image/png" }, limit)).toBeNull();
    expect(checkFile({ name: "b.png", size: 6 * 1024 * 1024, type: "image/png" }, limit)).toBe("b.png is 6.0 MB; the limit is 5.0 MB.");
  });
});

describe("/config.json", () => {
  it("takes the upload limit from the server, else 25 MiB", () => {
    expect(parseConfig({ gatewayUrl: "http://gw:8080/", maxUploadBytes: 1048576 })).toEqual({ gatewayUrl: "http://gw:8080", maxUploadBytes: 1048576 });
    expect(parseConfig({ gatewayUrl: "http://gw:8080" }).maxUploadBytes).toBe(25 * 1024 * 1024);
    for (const bad of [0, -1, 1.5, "1000", null, Number.NaN, 2 ** 60]) {
      expect(parseConfig({ gatewayUrl: "http://gw", maxUploadBytes: bad }).maxUploadBytes).toBe(MAX_UPLOAD_BYTES);
    }
  });
  it("needs a gateway URL", () => {
    expect(() => parseConfig({})).toThrow(/gatewayUrl/);
    expect(() => parseConfig(null)).toThrow(/gatewayUrl/);
    expect(() => parseConfig({ gatewayUrl: "" })).toThrow(/gatewayUrl/);
  });
});

describe("StreamGate", () => {
  it("grants at most `limit` slots, lowest priority value first", async () => {
    const gate = new StreamGate(2);
    const order: number[] = [];
    const first = await gate.acquire(5);
    const second = await gate.acquire(4);
    const releases = new Map<number, () => void>();
    for (const priority of [9, 1, 3]) {
      void gate.acquire(priority).then((release) => {
        order.push(priority);
        releases.set(priority, release);
      });
    }
    expect(gate.inUse).toBe(2);
    expect(gate.queued).toBe(3);
    first();
    first(); // releasing twice frees one slot only
    second();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(order).toEqual([1, 3]);
    expect(gate.inUse).toBe(2);
    releases.get(1)?.();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(order).toEqual([1, 3, 9]);
  });
  it("drops a waiter whose signal aborts", async () => {
    const gate = new StreamGate(1);
    const release = await gate.acquire(0);
    const controller = new AbortController();
    const waiting = gate.acquire(1, controller.signal);
    controller.abort();
    await expect(waiting).rejects.toBeDefined();
    expect(gate.queued).toBe(0);
    release();
    expect(gate.inUse).toBe(0);
  });
});
