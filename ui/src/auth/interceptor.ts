// Adds the access token to every call and renews it transparently.
//
// On UNAUTHENTICATED a unary call is retried once after one refresh; a server stream cannot be
// replayed here, so its caller (the watcher) reconnects after the refresh. When the refresh is
// refused, or the retried call is refused again, the session ends and the UI goes to /login.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import type { Session } from "./session";

/** Calls made without a session: their UNAUTHENTICATED means "wrong credentials". */
export const PUBLIC_METHODS: ReadonlySet<string> = new Set(["Register", "Login", "Refresh", "Logout"]);

export function authInterceptor(session: Session): Interceptor {
  return (next) => async (request) => {
    if (PUBLIC_METHODS.has(request.method.name)) return next(request);

    const token = await session.accessToken();
    if (token !== null) request.header.set("authorization", `Bearer ${token}`);
    try {
      const response = await next(request);
      if (!response.stream) return response;
      return { ...response, message: guardStream(response.message, session, token) } as typeof response;
    } catch (error) {
      if (!isUnauthenticated(error)) throw error;
      if (token === null || request.stream) {
        await recoverOrEnd(session, token);
        throw error;
      }
      if (!(await recoverOrEnd(session, token))) throw error;
      request.header.set("authorization", `Bearer ${session.currentAccessToken}`);
      try {
        return await next(request);
      } catch (retryError) {
        if (isUnauthenticated(retryError)) session.end("expired");
        throw retryError;
      }
    }
  };
}

/** A stream may be refused after its headers (in the trailers): renew the token for the retry. */
async function* guardStream<O>(messages: AsyncIterable<O>, session: Session, token: string | null): AsyncIterable<O> {
  try {
    for await (const message of messages) yield message;
  } catch (error) {
    if (isUnauthenticated(error)) await recoverOrEnd(session, token);
    throw error;
  }
}

async function recoverOrEnd(session: Session, token: string | null): Promise<boolean> {
  if (token === null) {
    session.end("expired");
    return false;
  }
  return session.recover(token);
}

export function isUnauthenticated(error: unknown): boolean {
  return error instanceof ConnectError && error.code === Code.Unauthenticated;
}
