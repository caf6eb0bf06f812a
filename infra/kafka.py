"""A single-node Apache Kafka broker (KRaft, broker + controller in one JVM), from Maven jars.

Storage is formatted once per data dir; the cluster id and the Kafka version that formatted it
are kept next to it. Storage formatted by one Kafka version is not meant for another, so a
version mismatch is an error (delete the data dir to start over) rather than a silent reformat
that would throw the data away.
"""

import base64
import os
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewPartitions, NewTopic

from infra.cache import ensure_kafka, kafka_version
from infra.log import say
from infra.process import ManagedProcess
from infra.topics import TopicSpec

# Console output goes to the broker's log file. INFO from kafka.server keeps the start-up
# milestones ("Kafka Server started", which readiness waits for); the loggers that print every
# config value, partition load and request drop to WARN.
_LOG4J2_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="stdout" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="stdout"/></Root>
    <Logger name="org.apache.kafka.common.config" level="WARN"/>
    <Logger name="org.apache.kafka.common.utils.AppInfoParser" level="WARN"/>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
    <Logger name="org.apache.kafka.storage" level="WARN"/>
    <Logger name="org.apache.kafka.raft" level="WARN"/>
    <Logger name="org.apache.kafka.controller" level="WARN"/>
    <Logger name="org.apache.kafka.image" level="WARN"/>
    <Logger name="org.apache.kafka.metadata" level="WARN"/>
    <Logger name="org.apache.kafka.coordinator" level="WARN"/>
    <Logger name="org.apache.kafka.server" level="WARN"/>
    <Logger name="kafka.log" level="WARN"/>
    <Logger name="kafka.cluster" level="WARN"/>
    <Logger name="kafka.coordinator" level="WARN"/>
    <Logger name="kafka.network" level="WARN"/>
    <Logger name="kafka.raft" level="WARN"/>
    <Logger name="kafka.server.metadata" level="WARN"/>
    <Logger name="kafka.server.ReplicaFetcherManager" level="WARN"/>
    <Logger name="kafka.server.ReplicaAlterLogDirsManager" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.request.logger" level="WARN"/>
  </Loggers>
</Configuration>
"""


# The broker's JVM on a small machine: the serial collector (no concurrent GC threads) and the
# C1 compiler only. Measured CPU per task of the broker 14.7 → 8.0 ms (URL sources), mostly the
# C2 compiler's work, which a broker serving tens of records a second never earns back
# (docs/decisions/0013-lean-task-lifecycle.md). KAFKA_JVM_PERFORMANCE_OPTS replaces it.
JVM_PERFORMANCE_OPTS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"


class KafkaBroker:
    """Kafka on ``127.0.0.1:port`` (controller on ``controller_port``), data in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        controller_port: int,
        libs_dir: Path | None = None,
        heap: str = "512m",
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self._libs_dir = libs_dir
        self.process: ManagedProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def version(self) -> str:
        return kafka_version()

    @property
    def libs_dir(self) -> Path:
        if self._libs_dir is None:
            self._libs_dir = ensure_kafka()
        return self._libs_dir

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "kraft-logs"

    def _java(self, main_class: str, *args: str) -> list[str]:
        libs = self.libs_dir  # first: fetching the jars installs Java when it is missing
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("java not found on PATH (infra.cache.ensure_kafka installs it)")
        return [
            java,
            "-Xms256m",
            f"-Xmx{self.heap}",
            # The variable Kafka's own start scripts read for JVM tuning (GC, JIT).
            *shlex.split(os.environ.get("KAFKA_JVM_PERFORMANCE_OPTS", JVM_PERFORMANCE_OPTS)),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.xml'}",
            "-cp",
            f"{libs}/*",
            main_class,
            *args,
        ]

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.xml").write_text(_LOG4J2_XML)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            # Static voters (format without --standalone): the port is read from this file on
            # every start, so a kept data dir may move to other ports.
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "log.dirs": str(self.log_dir),
            # One broker: every replication factor and min ISR must be 1.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",  # first consumer joins at once
            "auto.create.topics.enable": "false",  # a typo in a topic name must fail loudly
            "num.partitions": "1",
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in props.items()))
        return path

    def _format_once(self, config: Path) -> None:
        version_file = self.data_dir / "kafka.version"
        if (self.log_dir / "meta.properties").is_file():
            formatted_by = version_file.read_text().strip() if version_file.is_file() else "unknown"
            if formatted_by != self.version:
                raise RuntimeError(
                    f"Kafka storage in {self.log_dir} was formatted by Kafka {formatted_by}, this is "
                    f"{self.version}; storage is not portable between versions. Delete {self.data_dir} "
                    "to start over."
                )
            return
        cluster_file = self.data_dir / "cluster.id"
        if not cluster_file.is_file():
            # 16 random bytes, URL-safe base64 without padding: the format Kafka expects.
            # An id may start with "-": it is passed as --cluster-id=ID so it is not read as a flag.
            cluster_file.write_text(base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=") + "\n")
        started = time.monotonic()
        result = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_file.read_text().strip()}",
                "-c",
                str(config),
            ),
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"Kafka storage format failed:\n{result.stdout}")
        version_file.write_text(self.version + "\n")
        say(f"kafka: formatted storage in {time.monotonic() - started:.1f}s")

    def admin(self) -> AdminClient:
        # Without log.connection.close=false, every lingering client logs a line to stderr when
        # the broker stops.
        return AdminClient({"bootstrap.servers": self.bootstrap, "log.connection.close": False})

    def start(self, timeout: float = 60.0) -> None:
        config = self._write_config()
        self._format_once(config)
        self.process = ManagedProcess(
            "kafka",
            self._java("kafka.Kafka", str(config)),
            self.data_dir / "kafka.log",
            cwd=self.data_dir,
            env={**os.environ, "LOG_DIR": str(self.data_dir)},
        )
        self.process.start()
        process = self.process

        def ready() -> bool:
            if "Kafka Server started" not in process.log_text():
                return False
            self.admin().list_topics(timeout=2)  # the log line is not proof that clients get in
            return True

        try:
            process.wait_ready(ready, timeout)
        except BaseException:
            process.stop()
            raise

    def ensure_topics(self, specs: Iterable[TopicSpec], timeout: float = 30.0) -> None:
        """Create the topics idempotently; grow partition counts that are too small."""
        specs = list(specs)
        admin = self.admin()
        new = [
            NewTopic(
                s.name, num_partitions=s.partitions, replication_factor=s.replication_factor, config=dict(s.config)
            )
            for s in specs
        ]
        for name, future in admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout).items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise RuntimeError(f"creating Kafka topic {name} failed: {exc}") from exc
        # Topic creation is asynchronous on the broker side: wait until metadata shows it all.
        deadline = time.monotonic() + timeout
        grown: set[str] = set()
        while True:
            topics = admin.list_topics(timeout=timeout).topics
            short = [s for s in specs if s.name in topics and len(topics[s.name].partitions) < s.partitions]
            missing = [s.name for s in specs if s.name not in topics]
            grow = [NewPartitions(s.name, s.partitions) for s in short if s.name not in grown]
            if grow:  # a kept data dir from before a spec asked for more partitions
                for future in admin.create_partitions(grow, request_timeout=timeout).values():
                    future.result()
                grown.update(g.topic for g in grow)
            if not missing and not short:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Kafka topics not ready after {timeout:.0f}s: missing {missing}, short {[s.name for s in short]}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=30.0)
