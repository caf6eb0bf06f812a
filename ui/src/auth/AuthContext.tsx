import type { ReactNode } from "react";
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react";
import type { Api } from "../api/client";
import type { User } from "../gen/pixelflow/v1/auth_pb";
import { forgetAllPreviews } from "../tasks/previews";

export type AuthStatus = "restoring" | "signed-in" | "signed-out";

interface AuthValue {
  api: Api;
  status: AuthStatus;
  user: User | undefined;
  /** Why the user was last signed out without asking (shown on the login page). */
  notice: string | null;
  login(email: string, password: string): Promise<void>;
  register(email: string, password: string, displayName: string): Promise<void>;
  logout(): Promise<void>;
}

const AuthContext = createContext<AuthValue | null>(null);

export function AuthProvider({ api, children }: { api: Api; children: ReactNode }) {
  const [status, setStatus] = useState<AuthStatus>(api.session.active ? "restoring" : "signed-out");
  const [user, setUser] = useState<User | undefined>();
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(
    () =>
      api.session.subscribe((event) => {
        if (event.type === "signed-in") {
          if (event.user) setUser(event.user);
          setStatus("signed-in");
          setNotice(null);
        } else {
          setUser(undefined);
          setStatus("signed-out");
          forgetAllPreviews();
          if (event.reason === "expired") setNotice("Your session has ended. Log in again to continue.");
        }
      }),
    [api],
  );

  // A reload keeps the refresh token (sessionStorage) but not the access token: renew it.
  // Session.refresh is single-flight, so StrictMode's double effect sends one Refresh.
  useEffect(() => {
    if (!api.session.active || api.session.currentAccessToken) return;
    api.session.refresh().catch(() => {
      // The gateway is unreachable: keep the refresh token, but let the user see the login page.
      setStatus("signed-out");
      setNotice("PixelFlow cannot be reached right now; your session will resume when it can.");
    });
  }, [api]);

  const login = useCallback(
    async (email: string, password: string) => {
      const reply = await api.auth.login({ email, password });
      api.session.begin({
        accessToken: reply.accessToken,
        refreshToken: reply.refreshToken,
        expiresIn: reply.expiresIn,
        user: reply.user,
      });
    },
    [api],
  );

  const register = useCallback(
    async (email: string, password: string, displayName: string) => {
      await api.auth.register({ email, password, displayName });
    },
    [api],
  );

  const logout = useCallback(async () => {
    const refreshToken = api.session.refreshToken;
    api.session.end("logout");
    setNotice(null);
    if (refreshToken) {
      // Revoke server-side; the local session is gone either way.
      await api.auth.logout({ refreshToken }).catch(() => undefined);
    }
  }, [api]);

  const value = useMemo(
    () => ({ api, status, user, notice, login, register, logout }),
    [api, status, user, notice, login, register, logout],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}

export function useApi(): Api {
  return useAuth().api;
}
