// Where the tokens live and how they are renewed.
//
// The access token is kept in memory only (never in storage a script could read after the page
// is gone); the refresh token is in sessionStorage, so a reload of this tab stays signed in and
// closing the tab ends it. See docs/decisions/0008-browser-ui.md for the tradeoff.
import { Code, ConnectError } from "@connectrpc/connect";
import type { User } from "../gen/pixelflow/v1/auth_pb";

export const REFRESH_TOKEN_KEY = "pixelflow.refreshToken";
/** Renew this long before the access token expires, so a call never leaves with a stale one. */
export const EXPIRY_MARGIN_MS = 30_000;

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  /** Seconds the access token lives. */
  expiresIn: number;
  user?: User | undefined;
}

export type RefreshFn = (refreshToken: string) => Promise<TokenPair>;

export type SignOutReason = "logout" | "expired";

export type SessionEvent =
  | { type: "signed-in"; user: User | undefined }
  | { type: "signed-out"; reason: SignOutReason };

export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export class Session {
  private access: { token: string; expiresAt: number } | null = null;
  private refreshing: Promise<boolean> | null = null;
  private readonly listeners = new Set<(event: SessionEvent) => void>();

  constructor(
    private readonly storage: KeyValueStorage,
    private readonly refreshFn: RefreshFn,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when there is a session to resume (a refresh token), even if no access token yet. */
  get active(): boolean {
    return this.refreshToken !== null;
  }

  get refreshToken(): string | null {
    return this.storage.getItem(REFRESH_TOKEN_KEY);
  }

  /** The access token in memory, whether or not it is still valid. */
  get currentAccessToken(): string | null {
    return this.access?.token ?? null;
  }

  subscribe(listener: (event: SessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts (or renews) the session with a pair from Login or Refresh. */
  begin(pair: TokenPair): void {
    this.access = { token: pair.accessToken, expiresAt: this.now() + pair.expiresIn * 1000 };
    this.storage.setItem(REFRESH_TOKEN_KEY, pair.refreshToken);
    this.emit({ type: "signed-in", user: pair.user });
  }

  /** Forgets both tokens. `expired` tells the UI to explain why the user was signed out. */
  end(reason: SignOutReason): void {
    const wasActive = this.access !== null || this.active;
    this.access = null;
    this.storage.removeItem(REFRESH_TOKEN_KEY);
    if (wasActive) this.emit({ type: "signed-out", reason });
  }

  /** A usable access token: the one in memory, or a fresh one when it is (nearly) expired. */
  async accessToken(): Promise<string | null> {
    if (this.access && this.access.expiresAt - EXPIRY_MARGIN_MS > this.now()) return this.access.token;
    if (!this.active) return null;
    await this.refresh();
    return this.access?.token ?? null;
  }

  /**
   * Exchanges the refresh token for a new pair. Concurrent callers share one Refresh call:
   * refresh tokens rotate, and presenting a used one again would revoke the whole session.
   * Resolves false (and ends the session) when the server refuses the token; rejects, keeping
   * the session, when the server could not be reached.
   */
  refresh(): Promise<boolean> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /**
   * Called when the server refused `rejected`. If another call has already replaced it, the
   * new token is used as is; otherwise one refresh is tried.
   */
  async recover(rejected: string | null): Promise<boolean> {
    if (this.access && this.access.token !== rejected) return true;
    return this.refresh();
  }

  private async doRefresh(): Promise<boolean> {
    const refreshToken = this.refreshToken;
    if (refreshToken === null) {
      this.end("expired");
      return false;
    }
    try {
      this.begin(await this.refreshFn(refreshToken));
      return true;
    } catch (error) {
      if (isRefusal(error)) {
        this.end("expired");
        return false;
      }
      throw error;
    }
  }

  private emit(event: SessionEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }
}

/** The server looked at the token and said no (as opposed to: the server was not reachable). */
function isRefusal(error: unknown): boolean {
  if (!(error instanceof ConnectError)) return false;
  return [Code.Unauthenticated, Code.InvalidArgument, Code.PermissionDenied, Code.NotFound].includes(error.code);
}

/** An in-memory stand-in for sessionStorage (tests, or browsers that refuse storage). */
export class MemoryStorage implements KeyValueStorage {
  private readonly values = new Map<string, string>();
  getItem(key: string): string | null {
    return this.values.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.values.set(key, value);
  }
  removeItem(key: string): void {
    this.values.delete(key);
  }
}
