import type { UnaryRequest, UnaryResponse, StreamResponse } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import { authInterceptor } from "./interceptor";
import type { SessionEvent, TokenPair } from "./session";
import { EXPIRY_MARGIN_MS, MemoryStorage, REFRESH_TOKEN_KEY, Session } from "./session";

const unauthenticated = () => new ConnectError("the access token is invalid or expired", Code.Unauthenticated);

function pair(n: number, expiresIn = 900): TokenPair {
  return { accessToken: `access-${n}`, refreshToken: `refresh-${n}`, expiresIn };
}

function setup(refresh: (token: string) => Promise<TokenPair> = async (token) => pair(Number(token.split("-")[1]) + 1)) {
  const storage = new MemoryStorage();
  let now = 1_000_000;
  const refreshFn = vi.fn(refresh);
  const session = new Session(storage, refreshFn, () => now);
  const events: SessionEvent[] = [];
  session.subscribe((event) => events.push(event));
  return { storage, session, refreshFn, events, advance: (ms: number) => (now += ms) };
}

function request(method: string, stream = false) {
  return { method: { name: method }, stream, header: new Headers(), message: {} } as unknown as UnaryRequest;
}
const ok = { stream: false, message: { ok: true } } as unknown as UnaryResponse;

describe("Session", () => {
  it("keeps the access token in memory and the refresh token in storage", () => {
    const { session, storage } = setup();
    session.begin(pair(1));
    expect(session.currentAccessToken).toBe("access-1");
    expect(storage.getItem(REFRESH_TOKEN_KEY)).toBe("refresh-1");
    expect(JSON.stringify([...Object.values(storage)])).not.toContain("access-1");
  });

  it("resumes after a reload from the refresh token alone", async () => {
    const { storage, refreshFn } = setup();
    storage.setItem(REFRESH_TOKEN_KEY, "refresh-7");
    const reloaded = new Session(storage, refreshFn);
    expect(reloaded.active).toBe(true);
    expect(await reloaded.accessToken()).toBe("access-8");
    expect(storage.getItem(REFRESH_TOKEN_KEY)).toBe("refresh-8");
  });

  it("renews an access token that is about to expire, before the call", async () => {
    const { session, refreshFn, advance } = setup();
    session.begin(pair(1, 60));
    expect(await session.accessToken()).toBe("access-1");
    advance(60_000 - EXPIRY_MARGIN_MS + 1);
    expect(await session.accessToken()).toBe("access-2");
    expect(refreshFn).toHaveBeenCalledTimes(1);
  });

  it("sends one Refresh for many concurrent callers (rotation would revoke the session)", async () => {
    let resolve!: (value: TokenPair) => void;
    const { session, refreshFn } = setup(() => new Promise((r) => (resolve = r)));
    session.begin(pair(1));
    const waiting = [session.recover("access-1"), session.recover("access-1"), session.refresh()];
    resolve(pair(2));
    expect(await Promise.all(waiting)).toEqual([true, true, true]);
    expect(refreshFn).toHaveBeenCalledTimes(1);
    // A call that was refused with the old token after the refresh uses the new one as is.
    expect(await session.recover("access-1")).toBe(true);
    expect(refreshFn).toHaveBeenCalledTimes(1);
  });

  it("ends the session when the refresh token is refused", async () => {
    const { session, storage, events } = setup(async () => {
      throw unauthenticated();
    });
    session.begin(pair(1));
    expect(await session.refresh()).toBe(false);
    expect(session.active).toBe(false);
    expect(session.currentAccessToken).toBeNull();
    expect(storage.getItem(REFRESH_TOKEN_KEY)).toBeNull();
    expect(events.at(-1)).toEqual({ type: "signed-out", reason: "expired" });
  });

  it("keeps the session when the server cannot be reached", async () => {
    const { session } = setup(async () => {
      throw new ConnectError("failed to fetch", Code.Unavailable);
    });
    session.begin(pair(1));
    await expect(session.refresh()).rejects.toThrow(/failed to fetch/);
    expect(session.active).toBe(true);
  });
});

describe("authInterceptor", () => {
  it("adds the bearer token", async () => {
    const { session } = setup();
    session.begin(pair(1));
    const next = vi.fn(async (req: UnaryRequest) => {
      expect(req.header.get("authorization")).toBe("Bearer access-1");
      return ok;
    });
    await authInterceptor(session)(next as never)(request("ListTasks"));
    expect(next).toHaveBeenCalledTimes(1);
  });

  it("leaves login alone: its UNAUTHENTICATED means a wrong password, not an expired token", async () => {
    const { session, refreshFn } = setup();
    const next = vi.fn(async (req: UnaryRequest) => {
      expect(req.header.get("authorization")).toBeNull();
      throw unauthenticated();
    });
    await expect(authInterceptor(session)(next as never)(request("Login"))).rejects.toThrow();
    expect(refreshFn).not.toHaveBeenCalled();
  });

  it("on UNAUTHENTICATED refreshes once and retries with the new token", async () => {
    const { session, refreshFn } = setup();
    session.begin(pair(1));
    const seen: (string | null)[] = [];
    const next = vi.fn(async (req: UnaryRequest) => {
      seen.push(req.header.get("authorization"));
      if (seen.length === 1) throw unauthenticated();
      return ok;
    });
    await expect(authInterceptor(session)(next as never)(request("GetTask"))).resolves.toBe(ok);
    expect(seen).toEqual(["Bearer access-1", "Bearer access-2"]);
    expect(refreshFn).toHaveBeenCalledTimes(1);
    expect(session.active).toBe(true);
  });

  it("logs out when the refresh is refused", async () => {
    const { session, events } = setup(async () => {
      throw unauthenticated();
    });
    session.begin(pair(1));
    const next = vi.fn(async () => {
      throw unauthenticated();
    });
    await expect(authInterceptor(session)(next as never)(request("GetTask"))).rejects.toThrow();
    expect(next).toHaveBeenCalledTimes(1);
    expect(session.active).toBe(false);
    expect(events.at(-1)).toEqual({ type: "signed-out", reason: "expired" });
  });

  it("logs out when the retried call is refused again (no refresh loop)", async () => {
    const { session, refreshFn } = setup();
    session.begin(pair(1));
    const next = vi.fn(async () => {
      throw unauthenticated();
    });
    await expect(authInterceptor(session)(next as never)(request("GetTask"))).rejects.toThrow();
    expect(next).toHaveBeenCalledTimes(2);
    expect(refreshFn).toHaveBeenCalledTimes(1);
    expect(session.active).toBe(false);
  });

  it("passes other errors through without refreshing", async () => {
    const { session, refreshFn } = setup();
    session.begin(pair(1));
    const next = vi.fn(async () => {
      throw new ConnectError("task not found", Code.NotFound);
    });
    await expect(authInterceptor(session)(next as never)(request("GetTask"))).rejects.toThrow(/not found/);
    expect(refreshFn).not.toHaveBeenCalled();
    expect(session.active).toBe(true);
  });

  it("renews the token when a stream is refused in its trailers, for the watcher's reconnect", async () => {
    const { session, refreshFn } = setup();
    session.begin(pair(1));
    async function* messages() {
      yield { task: 1 };
      throw unauthenticated();
    }
    const next = vi.fn(async () => ({ stream: true, message: messages() }) as unknown as StreamResponse);
    const response = (await authInterceptor(session)(next as never)(request("WatchTask", true))) as unknown as StreamResponse;
    const received: unknown[] = [];
    await expect(
      (async () => {
        for await (const message of response.message) received.push(message);
      })(),
    ).rejects.toThrow();
    expect(received).toEqual([{ task: 1 }]);
    expect(refreshFn).toHaveBeenCalledTimes(1);
    expect(session.currentAccessToken).toBe("access-2");
  });

  it("a call without any session ends in signed-out", async () => {
    const { session, refreshFn } = setup();
    const next = vi.fn(async () => {
      throw unauthenticated();
    });
    await expect(authInterceptor(session)(next as never)(request("ListTasks"))).rejects.toThrow();
    expect(refreshFn).not.toHaveBeenCalled();
    expect(session.active).toBe(false);
  });
});
