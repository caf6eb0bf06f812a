"""worker_svc settings (PIXELFLOW_* environment variables)."""

from __future__ import annotations

import os

from pydantic import Field

from common.settings import CommonSettings, DataStoreSettings, InternalApiSettings, TokenVerifierSettings
from worker_svc.imaging.limits import peak_task_bytes


class WorkerSettings(CommonSettings, DataStoreSettings, TokenVerifierSettings, InternalApiSettings):
    # host:port of api_svc, whose TaskLifecycleService records every step of a task.
    api_addr: str = "127.0.0.1:50052"
    # gRPC port for WorkerStatusService and health; 0 picks a free one (extra workers on one host).
    worker_status_port: int = Field(default=50053, ge=0, le=65535)
    # Prometheus' /metrics (common.metrics, worker_svc.metrics); each extra worker on a host needs its own.
    worker_metrics_port: int = Field(default=9453, ge=0, le=65535)
    # Tasks processed at once; the image work runs in a process pool of this size.
    worker_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # A claimed task belongs to its worker this long; after that another worker may take it
    # over (the first one crashed). Longer than the processing deadline plus fetch time.
    # At most a day, as TaskLifecycleService's Claimant allows.
    worker_lease_seconds: float = Field(default=120.0, gt=0, le=86400)
    # Processing deadline of one attempt (decode + operations + encode).
    worker_task_deadline_seconds: float = Field(default=60.0, gt=0)
    # Attempts for transient failures (origin 5xx, timeouts) before FAILED + dead letter.
    worker_max_attempts: int = Field(default=3, ge=1, le=1000)
    worker_retry_backoff_seconds: float = Field(default=0.5, ge=0)
    worker_heartbeat_seconds: float = Field(default=5.0, gt=0)
    # A worker with no heartbeat for this long disappears from ListWorkers.
    worker_dead_after_seconds: float = Field(default=20.0, gt=0)
    # Source fetching. Comma-separated networks that may be fetched although private or
    # loopback (e.g. "127.0.0.1/32" for local testing); empty in production.
    fetch_allowed_networks: str = ""
    fetch_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    fetch_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    fetch_read_timeout_seconds: float = Field(default=15.0, gt=0)
    # Decoder limits.
    image_max_pixels: int = Field(default=50_000_000, ge=1)
    image_max_frames: int = Field(default=100, ge=1)
    # Shrink JPEG and WebP sources while decoding by the whole factor, as imgproxy and thumbor do:
    # ~25% faster fits, but fine detail aliases (docs/benchmarks.md). Off: leave 2× for Lanczos.
    image_fast_shrink_on_load: bool = False
    # Largest encoded result (held whole in memory by a pool process and by the worker).
    image_max_result_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    # Memory the image pool may use at once (0: no budget). With a budget, the pool runs at most
    # budget / peak_task_bytes(image_max_pixels) processes (fewer than worker_concurrency when
    # that is less): a container's limit then holds even if every task is the largest allowed.
    worker_memory_budget_bytes: int = Field(default=0, ge=0)

    @property
    def pool_size(self) -> int:
        if not self.worker_memory_budget_bytes:
            return self.worker_concurrency
        fits = self.worker_memory_budget_bytes // peak_task_bytes(self.image_max_pixels)
        return max(1, min(self.worker_concurrency, fits))
