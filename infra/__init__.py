"""Real PixelFlow infrastructure without Docker: PostgreSQL, Kafka, FerretDB and Envoy.

Used by the integration tests, ``make run`` (``python -m infra up``) and CI. Every binary is
fetched or built once into a cache (see :mod:`infra.cache`) and each server runs as a child
process that cannot outlive its parent (see :mod:`infra.process`).
"""

import common  # noqa: F401  (first: gRPC settings, see common/__init__.py)
from infra.envoy import EnvoyConfigError, EnvoyProxy
from infra.ferretdb import FerretDBServer
from infra.infrastructure import InfraPorts, Infrastructure, make_temp_root
from infra.kafka import KafkaBroker
from infra.postgres import PostgresServer
from infra.process import ManagedProcess, ProcessFailedError, free_port
from infra.topics import PROJECT_TOPICS, TopicSpec, project_topics

__all__ = [
    "PROJECT_TOPICS",
    "EnvoyConfigError",
    "EnvoyProxy",
    "FerretDBServer",
    "InfraPorts",
    "Infrastructure",
    "KafkaBroker",
    "ManagedProcess",
    "PostgresServer",
    "ProcessFailedError",
    "TopicSpec",
    "free_port",
    "make_temp_root",
    "project_topics",
]
