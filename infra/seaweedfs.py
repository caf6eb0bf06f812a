"""SeaweedFS as one process (master, volume server, filer and S3 gateway): the real S3 API on
127.0.0.1, for the S3 blob backend. Built from the Go module proxy (infra.cache).

It runs without an identities file, so it accepts unsigned requests: a local server only
(bound to loopback). docker-compose gives its S3 service keys.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from infra.cache import ensure_seaweedfs
from infra.process import ManagedProcess, free_ports

BUCKET = "pixelflow"


class SeaweedFSServer:
    def __init__(self, data_dir: Path, s3_port: int, binary: Path | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.s3_port = s3_port
        self._binary = binary
        self.process: ManagedProcess | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def binary(self) -> Path:
        if self._binary is None:
            self._binary = ensure_seaweedfs()
        return self._binary

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Every port explicit: the defaults include 8080 and 8333, and each gRPC port would
        # otherwise be its HTTP port + 10000 (past 65535 for a high free port).
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_grpc = free_ports(7)
        argv = [
            str(self.binary),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.data_dir}",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            # Small volumes: a test server must not reserve gigabytes of disk.
            "-master.volumeSizeLimitMB=256",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            "-volume.max=0",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.port.grpc={s3_grpc}",
            # Catalog servers we do not use, on fixed default ports: off.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        self.process = ManagedProcess("seaweedfs", argv, self.data_dir / "seaweedfs.log", cwd=self.data_dir)
        self.process.start()
        try:
            self.process.wait_ready(self._bucket_ready, timeout, interval=0.25)
        except BaseException:
            self.process.stop()
            raise

    def _bucket_ready(self) -> bool:
        """Creates the bucket (idempotent) and checks an object can be listed in it."""
        with httpx.Client(base_url=self.endpoint_url, timeout=2) as client:
            created = client.put(f"/{BUCKET}")
            if created.status_code not in (200, 409):
                return False
            return client.get(f"/{BUCKET}", params={"list-type": "2"}).status_code == 200

    def stop(self) -> None:
        if self.process is not None:
            # weed server keeps running for long after SIGTERM (measured: still up after 20 s);
            # its volumes are append-only and every acknowledged write is on disk, so it gets
            # a short grace and then SIGKILL.
            self.process.stop(timeout=3)
