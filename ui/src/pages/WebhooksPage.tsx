import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { FormEvent } from "react";
import { useEffect, useState } from "react";
import { useApi } from "../auth/AuthContext";
import { CopyIcon } from "../components/icons";
import { Alert, Button, Card, CardHeader, PageHeader, Spinner, TextField } from "../components/ui";
import { BadRequestSchema } from "../gen/google/rpc/error_details_pb";
import type { WebhookSettings } from "../gen/pixelflow/v1/webhook_pb";
import { describeError } from "../lib/errors";

/** A user's webhook settings: the default callback URL and the signing secret, which is shown
 *  once, right after it is made (the server never returns it again: decision 0018). */
export function WebhooksPage() {
  const api = useApi();
  const [settings, setSettings] = useState<WebhookSettings | null>(null);
  const [url, setUrl] = useState("");
  const [urlError, setUrlError] = useState<string | undefined>();
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [saving, setSaving] = useState(false);
  const [rotating, setRotating] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);

  useEffect(() => {
    const controller = new AbortController();
    api.webhooks
      .getWebhookSettings({}, { signal: controller.signal })
      .then((loaded) => {
        setSettings(loaded);
        setUrl(loaded.defaultUrl);
      })
      .catch((caught: unknown) => {
        if (!controller.signal.aborted) setError(describeError(caught));
      });
    return () => controller.abort();
  }, [api]);

  async function save(event: FormEvent) {
    event.preventDefault();
    setSaving(true);
    setSaved(false);
    setUrlError(undefined);
    setError(null);
    try {
      const updated = await api.webhooks.updateWebhookSettings({ defaultUrl: url.trim() });
      setSettings(updated);
      setUrl(updated.defaultUrl);
      setSaved(true);
    } catch (caught) {
      // Read here rather than through tasks/validation, which would pull protovalidate into the main chunk.
      const violation = ConnectError.from(caught)
        .findDetails(BadRequestSchema)
        .flatMap((details) => details.fieldViolations)
        .find((v) => v.field === "default_url");
      if (violation) setUrlError(violation.description);
      else setError(ConnectError.from(caught).code === Code.FailedPrecondition ? "Create a signing secret first (below): every event is signed with it." : describeError(caught));
    } finally {
      setSaving(false);
    }
  }

  async function rotate() {
    setRotating(true);
    setError(null);
    setCopied(false);
    try {
      const reply = await api.webhooks.rotateWebhookSecret({});
      setSecret(reply.secret);
      if (reply.settings) setSettings(reply.settings);
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setRotating(false);
    }
  }

  async function copy() {
    if (!secret) return;
    await navigator.clipboard.writeText(secret);
    setCopied(true);
  }

  return (
    <>
      <PageHeader
        title="Webhooks"
        description="When a task ends (completed, failed or cancelled), PixelFlow POSTs a signed JSON event to its callback URL (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature)."
      />
      {error && (
        <div className="mb-4">
          <Alert>{error}</Alert>
        </div>
      )}
      {settings === null && !error ? (
        <div className="flex items-center gap-2 text-sm text-slate-500" role="status">
          <Spinner className="h-4 w-4" /> Loading…
        </div>
      ) : (
        <div className="grid grid-cols-1 gap-6 lg:grid-cols-2">
          <Card>
            <CardHeader title="Signing secret" description="Verify each event with it (the base64 after whsec_ is the HMAC-SHA256 key)." />
            <div className="space-y-4 p-4 sm:p-5">
              <p className="text-sm text-slate-700" data-testid="secret-state">
                {settings?.hasSecret
                  ? `In force: ${settings.secretHint}${settings.secretRotatedAt ? `, since ${timestampDate(settings.secretRotatedAt).toLocaleString()}` : ""}`
                  : "No secret yet: tasks cannot name a callback URL until you create one."}
              </p>
              {secret && (
                <Alert kind="warning" title="Copy your new secret now">
                  <p className="mb-2">It is shown only this once. Events from now on are signed with it, and only with it.</p>
                  <div className="flex items-center gap-2">
                    <code className="min-w-0 flex-1 truncate rounded bg-white px-2 py-1 font-mono text-xs text-slate-900" data-testid="new-secret">
                      {secret}
                    </code>
                    <Button size="sm" variant="secondary" onClick={() => void copy()}>
                      <CopyIcon className="h-4 w-4" /> {copied ? "Copied" : "Copy"}
                    </Button>
                  </div>
                </Alert>
              )}
              <Button onClick={() => void rotate()} busy={rotating} variant={settings?.hasSecret ? "secondary" : "primary"}>
                {settings?.hasSecret ? "Rotate secret" : "Create secret"}
              </Button>
            </div>
          </Card>
          <Card>
            <CardHeader title="Default callback URL" description="Used by tasks that name no callback URL of their own. Leave empty for none." />
            <form className="space-y-4 p-4 sm:p-5" onSubmit={(event) => void save(event)} noValidate>
              <TextField
                label="Callback URL"
                type="url"
                inputMode="url"
                placeholder="https://example.com/hooks/pixelflow"
                value={url}
                onChange={(event) => {
                  setUrl(event.target.value);
                  setSaved(false);
                  setUrlError(undefined);
                }}
                error={urlError}
              />
              <div className="flex items-center gap-3">
                <Button type="submit" busy={saving}>
                  Save
                </Button>
                {saved && (
                  <span className="text-sm text-emerald-700" role="status">
                    Saved
                  </span>
                )}
              </div>
            </form>
          </Card>
        </div>
      )}
    </>
  );
}
