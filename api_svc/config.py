"""api_svc settings (PIXELFLOW_* environment variables)."""

from __future__ import annotations

from pydantic import Field

from common.settings import CommonSettings


class ApiSettings(CommonSettings):
    api_port: int = Field(default=50052, ge=0, le=65535)
    mongo_uri: str = "mongodb://127.0.0.1:27018/"
    mongo_database: str = "pixelflow"
    kafka_bootstrap: str = "127.0.0.1:19092"
    # host:port of auth_svc, for its public keys and revocations.
    auth_addr: str = "127.0.0.1:50051"
