// Uploads and downloads of image bytes. An upload is the file itself as the HTTP body of
// POST /v1/uploads (CreateUpload through the gateway's REST face): browsers cannot stream a
// gRPC-web request, and a raw body needs no base64 and no copy of the file in memory.
import { fromJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { HttpBody } from "../gen/google/api/httpbody_pb";
import type { Upload } from "../gen/pixelflow/v1/task_pb";
import { UploadSchema } from "../gen/pixelflow/v1/task_pb";
import type { Api } from "./client";

export async function uploadFile(api: Api, file: File, signal?: AbortSignal): Promise<Upload> {
  const send = async (token: string | null) =>
    fetch(`${api.gatewayUrl}/v1/uploads?filename=${encodeURIComponent(file.name)}`, {
      method: "POST",
      body: file,
      signal,
      headers: { "content-type": file.type || "application/octet-stream", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
  const token = await api.session.accessToken();
  let response = await send(token);
  // An access token that expired on the way: renew it once, as the gRPC-web calls do.
  if (response.status === 401 && (await api.session.recover(token))) response = await send(api.session.currentAccessToken);
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) throw errorFrom(response.status, body);
  return fromJson(UploadSchema, body as never, { ignoreUnknownFields: true });
}

/** The result's bytes: GetTaskResult streams them in chunks, the first naming the content type. */
export function downloadResult(api: Api, taskId: string, signal?: AbortSignal): Promise<Blob> {
  return collect(api.tasks.getTaskResult({ taskId }, { signal }));
}

/** One variant's bytes (a task created with variants), streamed by GetVariantResult as GetTaskResult streams the result. */
export function downloadVariant(api: Api, taskId: string, name: string, signal?: AbortSignal): Promise<Blob> {
  return collect(api.tasks.getVariantResult({ taskId, name }, { signal }));
}

/** A stream of HttpBody chunks as one Blob, typed by the first chunk's content type. */
async function collect(chunks: AsyncIterable<HttpBody>): Promise<Blob> {
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let contentType = "";
  for await (const chunk of chunks) {
    contentType ||= chunk.contentType;
    parts.push(chunk.data as Uint8Array<ArrayBuffer>);
  }
  return new Blob(parts, { type: contentType });
}

/** The gateway answers REST errors as {code, message} (google.rpc.Status as JSON). */
function errorFrom(status: number, body: unknown): ConnectError {
  const reply = (body ?? {}) as { code?: number; message?: string };
  const code = typeof reply.code === "number" && reply.code in Code ? (reply.code as Code) : status === 413 ? Code.ResourceExhausted : Code.Unknown;
  return new ConnectError(reply.message || `the upload failed (HTTP ${status})`, code);
}
