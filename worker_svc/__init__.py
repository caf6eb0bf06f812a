"""worker_svc: Kafka-fed image workers and the worker status service."""

import common  # noqa: F401  (first: gRPC settings, see common/__init__.py)
