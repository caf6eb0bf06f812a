"""api_svc settings (PIXELFLOW_* environment variables)."""

from __future__ import annotations

from pydantic import Field

from common.settings import (
    CommonSettings,
    DataStoreSettings,
    InternalApiSettings,
    TaskStoreSettings,
    TokenVerifierSettings,
)


class ApiSettings(CommonSettings, TaskStoreSettings, DataStoreSettings, TokenVerifierSettings, InternalApiSettings):
    api_port: int = Field(default=50052, ge=0, le=65535)
    # A new task's publish waits this long for Kafka's confirmation (CreateTask does not: it
    # answers once the task is stored); after that the task goes to the outbox.
    kafka_delivery_timeout_ms: int = Field(default=3000, ge=100)
    # Largest upload accepted (bytes); larger is INVALID_ARGUMENT and nothing is stored.
    # CreateUpload streams any size up to this.
    max_upload_bytes: int = Field(default=128 * 1024 * 1024, ge=1024)
    # Largest image sent inline in CreateTask: it travels in one message (under
    # grpc_max_message_bytes) and through the gateway as base64 JSON (under its 36 MiB buffer).
    max_inline_upload_bytes: int = Field(default=24 * 1024 * 1024, ge=1024)
    # Open WatchTask streams per user (per replica); more is RESOURCE_EXHAUSTED.
    max_watches_per_user: int = Field(default=32, ge=1)
    # Presets one user may keep (PresetService); more is RESOURCE_EXHAUSTED. ListPresets pages
    # hold up to 100, so the default fits one page.
    max_presets_per_user: int = Field(default=100, ge=1)
    # Each user's quotas unless an administrator sets their own (AdminService.SetQuota); over
    # one is RESOURCE_EXHAUSTED with a QuotaFailure naming it (api_svc.quotas, decision 0020).
    # Tasks PENDING or PROCESSING at once:
    quota_active_tasks: int = Field(default=100, ge=0)
    # Tasks created per calendar day in UTC (the count starts again at midnight UTC):
    quota_tasks_per_day: int = Field(default=10_000, ge=0)
    # Bytes kept per user (uploads, results, inline sources):
    quota_stored_bytes: int = Field(default=10 * 1024**3, ge=0)
    # The largest single upload (below max_upload_bytes, the service's own bound, to matter):
    quota_max_upload_bytes: int = Field(default=128 * 1024 * 1024, ge=0)
    # Where clients fetch results: processed_url = <this>/v1/tasks/<id>/result.
    public_base_url: str = "http://127.0.0.1:8080"
    # Tasks not confirmed by Kafka are published again by the outbox relay after this many seconds.
    outbox_interval_seconds: float = Field(default=2.0, gt=0)
    # A task PENDING this long, or PROCESSING past its lease, is published again (a safety net
    # for lost messages and crashed workers; duplicates are acknowledged without work).
    stranded_task_seconds: float = Field(default=60.0, gt=0)
    # The orphan-blob sweep (api_svc.blob_sweep) runs this often, and leaves alone blobs
    # younger than the grace period (longer than any write in flight: a worker's lease).
    blob_sweep_interval_seconds: float = Field(default=600.0, gt=0)
    blob_sweep_grace_seconds: float = Field(default=3600.0, ge=0)
    # Webhooks (api_svc.webhooks, decision 0018). Networks a callback URL may reach although
    # they are private/loopback/... (comma-separated; development and tests): a setting of its
    # own, so allowing a network for sources does not open it to callbacks, or the reverse.
    webhook_allowed_networks: str = ""
    # A delivery is retried for this long after the task ended, then given up (recorded).
    webhook_retry_seconds: float = Field(default=86400.0, gt=0)
    # The first retry waits this long, each later one twice as long (plus up to half of it as
    # jitter), at most webhook_max_backoff_seconds.
    webhook_first_backoff_seconds: float = Field(default=5.0, gt=0)
    webhook_max_backoff_seconds: float = Field(default=3600.0, gt=0)
    # One attempt (connect, send, the receiver's status line) may take this long.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # The dispatcher looks for due deliveries this often (and at once after an outcome here).
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
