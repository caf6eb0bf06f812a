"""auth_svc settings (PIXELFLOW_* environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from common.settings import CommonSettings


class AuthSettings(CommonSettings):
    auth_port: int = Field(default=50051, ge=0, le=65535)
    # Prometheus' /metrics (common.metrics).
    auth_metrics_port: int = Field(default=9451, ge=0, le=65535)
    # SQLAlchemy URL; the asyncpg driver is required.
    auth_database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:55432/pixelflow_auth"
    # PEM file holding the Ed25519 signing key. Empty: <data_dir>/auth/jwt-ed25519.pem, generated
    # on first start (development only: production mounts its own key here).
    auth_signing_key_file: Path | None = None
    jwt_issuer: str = "pixelflow-auth"
    jwt_audience: str = "pixelflow"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, ge=60)
    # A refresh token used again this soon after its rotation is a client retrying a refresh
    # whose response it lost: it gets a new pair. Later, a reuse is theft and ends the session.
    refresh_retry_grace_seconds: int = Field(default=10, ge=0, le=300)
    # bcrypt work factor; 12 costs ~0.25 s a hash here. Tests lower it.
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    # Hashes computed at once; more only queue up behind the CPU.
    bcrypt_concurrency: int = Field(default=2, ge=1)
    # Login attempts per email within the window before RESOURCE_EXHAUSTED.
    login_max_attempts: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)

    @property
    def signing_key_path(self) -> Path:
        return self.auth_signing_key_file or self.data_dir / "auth" / "jwt-ed25519.pem"
