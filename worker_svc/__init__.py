"""worker_svc: Kafka-fed image workers and the worker status service."""
