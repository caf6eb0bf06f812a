"""The harness starts the real servers, and stops them without leaving a process behind.

Nothing here is skipped: a machine that cannot fetch, build or start a component fails.
"""

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import httpx
import pytest
from confluent_kafka import Consumer, Producer
from pymongo import MongoClient

from infra import (
    PROJECT_TOPICS,
    EnvoyConfigError,
    EnvoyProxy,
    InfraPorts,
    Infrastructure,
    ManagedProcess,
    free_port,
    make_temp_root,
)
from infra.process import group_alive, pid_alive
from tests.conftest import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def infra_stack() -> Iterator[Infrastructure]:
    root = make_temp_root("pixelflow-test-infra-")
    infra = Infrastructure(root, InfraPorts.free(), throwaway=True)
    try:
        with infra:
            yield infra
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_gone(pid: int, message: str = "", timeout: float = 10.0) -> None:
    """Waits until the process and its group are gone; fails with `message` otherwise."""
    gone = lambda: not pid_alive(pid) and not group_alive(pid)  # noqa: E731
    wait_until(gone, message or f"pid {pid} or its process group is still alive", timeout=timeout)


def test_postgres_is_real_postgresql_15(infra_stack: Infrastructure) -> None:
    async def version() -> str:
        conn = await asyncpg.connect(infra_stack.postgres_dsn)
        try:
            return str(await conn.fetchval("select version()"))
        finally:
            await conn.close()

    assert "PostgreSQL 15" in asyncio.run(version())
    infra_stack.postgres.create_database("pixelflow_auth")
    infra_stack.postgres.create_database("pixelflow_auth")  # idempotent
    assert infra_stack.postgres.psql("SELECT count(*) FROM pg_database WHERE datname = 'pixelflow_auth'") == "1"


def test_kafka_has_project_topics(infra_stack: Infrastructure) -> None:
    admin = infra_stack.kafka.admin()
    cluster = admin.describe_cluster(request_timeout=10).result()
    assert len(cluster.nodes) == 1
    topics = admin.list_topics(timeout=10).topics
    for spec in PROJECT_TOPICS:
        assert spec.name in topics, spec.name
        assert len(topics[spec.name].partitions) == spec.partitions, spec.name
    infra_stack.kafka.ensure_topics(PROJECT_TOPICS)  # idempotent


def test_kafka_produce_consume_round_trip(infra_stack: Infrastructure) -> None:
    topic = PROJECT_TOPICS[0].name
    payload = json.dumps({"probe": uuid.uuid4().hex}).encode()
    producer = Producer({"bootstrap.servers": infra_stack.kafka_bootstrap, "acks": "all"})
    producer.produce(topic, key=b"probe", value=payload)
    assert producer.flush(10) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": infra_stack.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None and message.value() == payload:
                return
        pytest.fail("the produced message never came back")
    finally:
        consumer.close()


def test_ferretdb_speaks_mongodb(infra_stack: Infrastructure) -> None:
    client: MongoClient[dict[str, object]] = MongoClient(infra_stack.mongo_uri, serverSelectionTimeoutMS=5000)
    try:
        info = client.admin.command("buildInfo")
        assert info["version"]
        # FerretDB adds its own keys (ferretdbVersion, ferretdbFeatures); real MongoDB has none.
        assert "ferretdbVersion" in info and "ferretdbFeatures" in info
        collection = client["pixelflow_test"]["probe"]
        collection.insert_one({"_id": "a", "n": 1})
        updated = collection.find_one_and_update({"_id": "a"}, {"$inc": {"n": 1}}, return_document=True)
        assert updated is not None and updated["n"] == 2
    finally:
        client.close()


def _envoy_config(path: Path, admin_port: int, listener_port: int) -> None:
    # JSON is valid YAML; Envoy picks the parser from the extension.
    config = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "probe",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": listener_port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                        "http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "probe",
                                        "route_config": {
                                            "virtual_hosts": [
                                                {
                                                    "name": "all",
                                                    "domains": ["*"],
                                                    "routes": [
                                                        {
                                                            "match": {"prefix": "/"},
                                                            "direct_response": {
                                                                "status": 200,
                                                                "body": {"inline_string": "pixelflow-envoy"},
                                                            },
                                                        }
                                                    ],
                                                }
                                            ]
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http."
                                                    "router.v3.Router"
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        },
    }
    path.write_text(json.dumps(config, indent=2))


def test_envoy_validates_and_serves(tmp_path: Path) -> None:
    admin_port, listener_port = free_port(), free_port()
    config = tmp_path / "envoy.json"
    _envoy_config(config, admin_port, listener_port)
    EnvoyProxy.validate(config)
    broken = tmp_path / "broken.json"
    broken.write_text(config.read_text().replace('"stat_prefix"', '"stat_prefixx"'))
    with pytest.raises(EnvoyConfigError, match="stat_prefixx"):
        EnvoyProxy.validate(broken)

    proxy = EnvoyProxy(config, admin_port, tmp_path / "envoy")
    proxy.start()
    try:
        assert proxy.process is not None and proxy.process.pid is not None
        pid = proxy.process.pid
        assert httpx.get(f"{proxy.admin_url}/ready", timeout=5).status_code == 200
        response = httpx.get(f"http://127.0.0.1:{listener_port}/anything", timeout=5)
        assert response.status_code == 200
        assert response.text == "pixelflow-envoy"
    finally:
        proxy.stop()
    _wait_gone(pid)


def test_children_survive_the_thread_that_started_them(tmp_path: Path) -> None:
    # PDEATHSIG fires when the *thread* that forked exits; spawning goes through a long-lived
    # thread so this does not kill servers started from worker threads.
    # The child proves it outlived the thread: it writes its sentinel only after the thread is
    # gone (a PDEATHSIG would have killed it when the thread exited, before the sentinel).
    alive = tmp_path / "alive"
    child = f"sleep 0.5; touch {alive}; sleep 60"
    proc = ManagedProcess("sleeper", ["sh", "-c", child], tmp_path / "sleep.log")
    thread = threading.Thread(target=proc.start)
    thread.start()
    thread.join()
    try:
        wait_until(alive.exists, "the child died with the thread that started it", timeout=10)
        assert proc.running
    finally:
        proc.stop()
    assert proc.pid is not None
    _wait_gone(proc.pid)


def test_children_die_with_a_killed_parent(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from infra.process import ManagedProcess
        proc = ManagedProcess("sleeper", ["sleep", "300"], Path({str(tmp_path / "orphan.log")!r}))
        proc.start()
        print(proc.pid, flush=True)
        time.sleep(300)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert pid_alive(child_pid)
    parent.send_signal(signal.SIGKILL)  # no finally, no atexit: only the kernel can help
    parent.wait()
    _wait_gone(child_pid, f"pid {child_pid} outlived its SIGKILLed parent", timeout=5)


def test_stop_leaves_no_process_behind(infra_stack: Infrastructure) -> None:
    pids = infra_stack.pids()
    assert set(pids) == {"postgres", "ferretdb", "kafka"}
    assert all(pid_alive(pid) for pid in pids.values())
    infra_stack.stop()
    for name, pid in pids.items():
        _wait_gone(pid, f"{name} (pid {pid}) or its process group is still alive")
    assert infra_stack.pids() == {}
