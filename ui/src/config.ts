// The run-time configuration from /config.json (served by infra/ui_server.py, or by Vite in dev).
import { createContext, useContext } from "react";

/** api_svc's default PIXELFLOW_MAX_UPLOAD_BYTES (25 MiB), used when /config.json names none. */
export const DEFAULT_MAX_UPLOAD_BYTES = 25 * 1024 * 1024;

export interface AppConfig {
  /** Where the browser reaches the gateway (Envoy), without a trailing slash. */
  gatewayUrl: string;
  /** The largest upload the API accepts; the UI refuses bigger files before reading them. */
  maxUploadBytes: number;
}

/** Checks /config.json's body: a gatewayUrl is required, anything else falls back to a default. */
export function parseConfig(raw: unknown): AppConfig {
  const config = (typeof raw === "object" && raw !== null ? raw : {}) as { gatewayUrl?: unknown; maxUploadBytes?: unknown };
  if (typeof config.gatewayUrl !== "string" || config.gatewayUrl === "") {
    throw new Error("/config.json has no gatewayUrl");
  }
  const limit = config.maxUploadBytes;
  const maxUploadBytes = typeof limit === "number" && Number.isSafeInteger(limit) && limit > 0 ? limit : DEFAULT_MAX_UPLOAD_BYTES;
  return { gatewayUrl: config.gatewayUrl.replace(/\/+$/, ""), maxUploadBytes };
}

export async function loadConfig(): Promise<AppConfig> {
  const response = await fetch("/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`GET /config.json answered ${response.status}`);
  return parseConfig(await response.json());
}

export const ConfigContext = createContext<AppConfig>({ gatewayUrl: "", maxUploadBytes: DEFAULT_MAX_UPLOAD_BYTES });

export function useConfig(): AppConfig {
  return useContext(ConfigContext);
}
