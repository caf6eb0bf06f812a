// Turns a failed call into a sentence for people. The services already write messages a
// person can act on; this adds wording for the transport-level failures they cannot describe.
import { Code, ConnectError } from "@connectrpc/connect";
import { capitalize } from "./format";

export function describeError(error: unknown): string {
  if (error instanceof DOMException && error.name === "AbortError") return "The request was cancelled.";
  const connect = ConnectError.from(error);
  switch (connect.code) {
    case Code.Unavailable:
      return "The PixelFlow service cannot be reached right now. Check your connection and try again.";
    case Code.DeadlineExceeded:
      return "The server took too long to answer. Try again.";
    case Code.Internal:
    case Code.Unknown:
    case Code.DataLoss:
      return connect.rawMessage && !/^(internal|unknown|fetch|failed to fetch)/i.test(connect.rawMessage)
        ? `Something went wrong on our side: ${connect.rawMessage}.`
        : "Something went wrong on our side. Try again in a moment.";
    case Code.Unimplemented:
      return "This server does not support that yet.";
    default:
      return sentence(connect.rawMessage || "The request failed.");
  }
}

/** The message a login attempt shows, by status: wrong password, throttled, invalid, down. */
export function describeLoginError(error: unknown): string {
  const connect = ConnectError.from(error);
  if (connect.code === Code.Unauthenticated) return "Incorrect email or password.";
  if (connect.code === Code.ResourceExhausted) return sentence(connect.rawMessage || "Too many login attempts; wait a while and try again.");
  return describeError(error);
}

export function describeRegisterError(error: unknown): string {
  const connect = ConnectError.from(error);
  if (connect.code === Code.AlreadyExists) return "An account with this email already exists. Log in instead.";
  return describeError(error);
}

export function isCode(error: unknown, code: Code): boolean {
  return error instanceof ConnectError && error.code === code;
}

function sentence(text: string): string {
  const trimmed = capitalize(text.trim());
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}
