"""SeaweedFS as one process (master, volume server, filer and S3 gateway): the real S3 API on
127.0.0.1, for the S3 blob backend. Built from the Go module proxy (infra.cache).

Like a deployed S3 it refuses unsigned requests: each server gets a fresh admin key pair
(SeaweedFS takes it from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), which the stack hands to the
services, so the tests exercise the signed requests production makes.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass, fields
from pathlib import Path

import httpx

from common.blobstore.s3 import S3BlobStore
from infra.cache import ensure_seaweedfs
from infra.process import ManagedProcess, free_ports

BUCKET = "pixelflow"


@dataclass(frozen=True)
class SeaweedFSPorts:
    """Every port explicit: the defaults include 8080 and 8333, and each gRPC port would
    otherwise be its HTTP port + 10000 (past 65535 for a high free port). Chosen together with
    the stack's other ports (one free_ports call), so no two components race for one."""

    s3: int = 18333
    s3_grpc: int = 18334
    master: int = 18335
    master_grpc: int = 18336
    volume: int = 18337
    volume_grpc: int = 18338
    filer: int = 18339
    filer_grpc: int = 18340

    @classmethod
    def free(cls) -> SeaweedFSPorts:
        return cls(*free_ports(len(fields(cls))))


class SeaweedFSServer:
    def __init__(self, data_dir: Path, ports: SeaweedFSPorts, binary: Path | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.ports = ports
        self._binary = binary
        self.process: ManagedProcess | None = None
        self.access_key_id = "pf" + secrets.token_hex(8)
        self.secret_access_key = secrets.token_urlsafe(24)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.s3}"

    @property
    def binary(self) -> Path:
        if self._binary is None:
            self._binary = ensure_seaweedfs()
        return self._binary

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports = self.ports
        argv = [
            str(self.binary),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.data_dir}",
            f"-master.port={ports.master}",
            f"-master.port.grpc={ports.master_grpc}",
            # Small volumes: a test server must not reserve gigabytes of disk.
            "-master.volumeSizeLimitMB=256",
            f"-volume.port={ports.volume}",
            f"-volume.port.grpc={ports.volume_grpc}",
            "-volume.max=0",
            "-filer",
            f"-filer.port={ports.filer}",
            f"-filer.port.grpc={ports.filer_grpc}",
            "-s3",
            f"-s3.port={ports.s3}",
            f"-s3.port.grpc={ports.s3_grpc}",
            # Catalog servers we do not use, on fixed default ports: off.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        self.process = ManagedProcess("seaweedfs", argv, self.data_dir / "seaweedfs.log", env=env, cwd=self.data_dir)
        self.process.start()
        try:
            self.process.wait_ready(self._bucket_ready, timeout, interval=0.25)
        except BaseException:
            self.process.stop()
            raise

    def _bucket_ready(self) -> bool:
        """Ready once the S3 API answers and a signed write lands, which creates the bucket
        (an admin identity's first write to a missing bucket creates it)."""
        if httpx.get(f"{self.endpoint_url}/healthz", timeout=2).status_code != 200:
            return False
        # "ready" is outside the blob key layout (common.blobstore.keys): the sweep never touches it.
        asyncio.run(self.blob_store().put("ready", b""))
        return True

    def blob_store(self) -> S3BlobStore:
        """The project's S3 backend, signed with this server's keys."""
        return S3BlobStore(
            bucket=BUCKET,
            endpoint_url=self.endpoint_url,
            region="us-east-1",
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
        )

    def stop(self) -> None:
        if self.process is not None:
            # weed server keeps running for long after SIGTERM (measured: still up after 20 s);
            # its volumes are append-only and every acknowledged write is on disk, so it gets
            # a short grace and then SIGKILL.
            self.process.stop(timeout=3)
