// The services' clients over gRPC-web, through the Envoy gateway.
import type { Client } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { authInterceptor } from "../auth/interceptor";
import type { KeyValueStorage } from "../auth/session";
import { MemoryStorage, Session } from "../auth/session";
import { AuthService } from "../gen/pixelflow/v1/auth_pb";
import { PresetService } from "../gen/pixelflow/v1/preset_pb";
import { QuotaService } from "../gen/pixelflow/v1/quota_pb";
import { TaskService } from "../gen/pixelflow/v1/task_pb";
import { WebhookService } from "../gen/pixelflow/v1/webhook_pb";
import { WorkerStatusService } from "../gen/pixelflow/v1/worker_pb";

export interface Api {
  gatewayUrl: string;
  session: Session;
  auth: Client<typeof AuthService>;
  tasks: Client<typeof TaskService>;
  presets: Client<typeof PresetService>;
  quotas: Client<typeof QuotaService>;
  workers: Client<typeof WorkerStatusService>;
  webhooks: Client<typeof WebhookService>;
}

export function createApi(gatewayUrl: string, storage: KeyValueStorage = browserSessionStorage()): Api {
  // The session needs the auth client to refresh, and the transport needs the session: Refresh
  // is a public method, so the interceptor passes it through untouched.
  let auth: Client<typeof AuthService> | undefined;
  const session = new Session(storage, async (refreshToken) => {
    if (!auth) throw new Error("the API is not ready");
    const reply = await auth.refresh({ refreshToken });
    return { accessToken: reply.accessToken, refreshToken: reply.refreshToken, expiresIn: reply.expiresIn, user: reply.user };
  });
  const transport = createGrpcWebTransport({
    baseUrl: gatewayUrl,
    interceptors: [authInterceptor(session)],
  });
  auth = createClient(AuthService, transport);
  return {
    gatewayUrl,
    session,
    auth,
    tasks: createClient(TaskService, transport),
    presets: createClient(PresetService, transport),
    quotas: createClient(QuotaService, transport),
    workers: createClient(WorkerStatusService, transport),
    webhooks: createClient(WebhookService, transport),
  };
}

function browserSessionStorage(): KeyValueStorage {
  try {
    const probe = "pixelflow.probe";
    window.sessionStorage.setItem(probe, "1");
    window.sessionStorage.removeItem(probe);
    return window.sessionStorage;
  } catch {
    // Storage disabled: the session then lasts until the page is reloaded.
    return new MemoryStorage();
  }
}
