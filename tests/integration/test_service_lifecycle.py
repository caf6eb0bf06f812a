"""Every service starts, reports health, logs JSON lines and exits cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from infra.process import free_ports
from infra.stack import REPO_ROOT, Stack
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

PORT_VARIABLE = {
    "auth_svc": "PIXELFLOW_AUTH_PORT",
    "api_svc": "PIXELFLOW_API_PORT",
    "worker_svc": "PIXELFLOW_WORKER_STATUS_PORT",
}
# The second instance's /metrics needs a port of its own too (the stack's own instance holds it).
METRICS_PORT_VARIABLE = {
    "auth_svc": "PIXELFLOW_AUTH_METRICS_PORT",
    "api_svc": "PIXELFLOW_API_METRICS_PORT",
    "worker_svc": "PIXELFLOW_WORKER_METRICS_PORT",
}


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        return int(reply.status)


@pytest.mark.parametrize("service", sorted(PORT_VARIABLE))
def test_service_drains_and_exits_zero_on_sigterm(stack: Stack, service: str) -> None:
    port, metrics_port = free_ports(2)
    env = {
        **os.environ,
        **stack.service_environment(),
        PORT_VARIABLE[service]: str(port),
        METRICS_PORT_VARIABLE[service]: str(metrics_port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", service],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def serving() -> bool:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            return bool(_health(f"127.0.0.1:{port}") == health_pb2.HealthCheckResponse.SERVING)
        except grpc.RpcError:
            return False

    try:
        wait_until(serving, f"{service} did not become healthy", timeout=30)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    messages = [line["message"] for line in lines]
    assert "listening" in messages and messages[-1] == "stopped"
    assert all(line["service"] == service and "level" in line and "time" in line for line in lines)
