"""Settings shared by every service, read from PIXELFLOW_* environment variables."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from pymongo import AsyncMongoClient


class CommonSettings(BaseSettings):
    """Base for each service's settings: one prefix, so the README has one table."""

    model_config = SettingsConfigDict(env_prefix="PIXELFLOW_", extra="ignore", frozen=True)

    log_level: str = "INFO"
    # Where generated development keys and local state live (make run: ./data).
    data_dir: Path = Path("data")
    # Address the gRPC servers bind to. 127.0.0.1 keeps a development stack private.
    bind_host: str = "127.0.0.1"
    # Seconds in-flight RPCs get to finish after SIGTERM.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # Largest gRPC message accepted or sent, in bytes (uploads travel in one message).
    grpc_max_message_bytes: int = Field(default=32 * 1024 * 1024, ge=1024 * 1024)


class TaskStoreSettings(BaseSettings):
    """MongoDB, api_svc's task store (mixed into its settings; the workers ask api_svc instead)."""

    def mongo_client(self) -> AsyncMongoClient[dict[str, Any]]:
        """The task store's client, with every timeout set: no call waits on it forever."""
        return AsyncMongoClient(
            self.mongo_uri,
            serverSelectionTimeoutMS=self.mongo_timeout_ms,
            connectTimeoutMS=self.mongo_timeout_ms,
            socketTimeoutMS=self.mongo_socket_timeout_ms,
            tz_aware=True,
        )

    model_config = SettingsConfigDict(env_prefix="PIXELFLOW_", extra="ignore", frozen=True)

    mongo_uri: str = "mongodb://127.0.0.1:27018/"
    mongo_database: str = "pixelflow"
    # How long a call waits for MongoDB before answering UNAVAILABLE.
    mongo_timeout_ms: int = Field(default=3000, ge=100)
    # How long one command may go unanswered on an open connection (a paused or half-dead
    # store) before it fails as unavailable instead of hanging the call.
    mongo_socket_timeout_ms: int = Field(default=10000, ge=100)


class DataStoreSettings(BaseSettings):
    """Kafka and the blob store, shared by api_svc and worker_svc (mixed into their settings)."""

    model_config = SettingsConfigDict(env_prefix="PIXELFLOW_", extra="ignore", frozen=True)

    kafka_bootstrap: str = "127.0.0.1:19092"
    # Where image bytes live: "filesystem" (one machine) or "s3" (any S3-compatible store,
    # shared by containers on several hosts). The task store keeps only keys.
    blob_backend: Literal["filesystem", "s3"] = "filesystem"
    # The filesystem backend's directory; <data_dir>/blobs when empty.
    blob_dir: Path | None = None
    # S3 backend. An empty endpoint means AWS itself; set it for SeaweedFS, MinIO and others.
    s3_endpoint_url: str = ""
    s3_bucket: str = "pixelflow"
    s3_region: str = "us-east-1"
    # Empty keys send unsigned requests (for a store that allows anonymous access).
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr = SecretStr("")


class TokenVerifierSettings(BaseSettings):
    """How a service that verifies access tokens locally reaches auth_svc (api_svc, worker_svc)."""

    model_config = SettingsConfigDict(env_prefix="PIXELFLOW_", extra="ignore", frozen=True)

    # host:port of auth_svc, for its public keys and revocations.
    auth_addr: str = "127.0.0.1:50051"
    # A revoked session stops working within this many seconds.
    revocation_poll_seconds: float = Field(default=2.0, gt=0)
    # Revocations older than this are not trusted to be known: calls are refused (UNAVAILABLE)
    # and health turns NOT_SERVING until a poll succeeds again. Fail closed, not open.
    revocation_max_staleness_seconds: float = Field(default=10.0, gt=0)
    signing_keys_refresh_seconds: float = Field(default=300.0, gt=0)


class InternalApiSettings(BaseSettings):
    """The secret api_svc and worker_svc share for TaskLifecycleService (common.internal_auth)."""

    model_config = SettingsConfigDict(env_prefix="PIXELFLOW_", extra="ignore", frozen=True)

    # At least 32 characters, the same for api_svc and every worker: `make run` and the tests
    # generate one per stack; a deployment sets its own (docker-compose.yml marks its
    # development value as such). Tools that only read settings do without.
    internal_secret: SecretStr = SecretStr("")

    def required_internal_secret(self, service: str) -> str:
        """The secret, for the services that serve or call TaskLifecycleService; without it the
        process exits at once, saying what to set."""
        secret = self.internal_secret.get_secret_value()
        if len(secret) < 32:
            sys.exit(
                f"{service}: PIXELFLOW_INTERNAL_SECRET must be set to the same 32+ random characters for "
                "api_svc and every worker_svc (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return secret
