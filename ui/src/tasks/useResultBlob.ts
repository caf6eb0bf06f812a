// A completed task's bytes in the browser, as an object URL for an <img> and a download link:
// the task's result (GetTaskResult) or one of its variants (GetVariantResult). Fetched once the
// task is COMPLETED; the URL is revoked when the page leaves or the task changes.
import { useEffect, useState } from "react";
import type { Api } from "../api/client";
import { downloadResult, downloadVariant } from "../api/uploads";
import { describeError } from "../lib/errors";

export interface ResultBlob {
  url: string | null;
  contentType: string | null;
  error: string | null;
}

const NONE: ResultBlob = { url: null, contentType: null, error: null };

/** `variant` null for the task's own result; nothing is fetched until `completed`. */
export function useResultBlob(api: Api, taskId: string, variant: string | null, completed: boolean): ResultBlob {
  const [state, setState] = useState<ResultBlob>(NONE);
  useEffect(() => {
    if (!completed) return;
    const controller = new AbortController();
    let objectUrl: string | null = null;
    const download = variant === null ? downloadResult(api, taskId, controller.signal) : downloadVariant(api, taskId, variant, controller.signal);
    download
      .then((blob) => {
        if (controller.signal.aborted) return; // finished as the page moved on: no URL to leak
        objectUrl = URL.createObjectURL(blob);
        setState({ url: objectUrl, contentType: blob.type, error: null });
      })
      .catch((caught: unknown) => {
        if (!controller.signal.aborted) setState({ url: null, contentType: null, error: describeError(caught) });
      });
    return () => {
      controller.abort();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [api, taskId, variant, completed]);
  return state;
}
