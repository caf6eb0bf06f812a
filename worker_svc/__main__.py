"""Runs one worker: the Kafka consumer and its process pool, heartbeats, and a gRPC server with
WorkerStatusService and health. The one place that builds the worker's objects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import socket
import uuid
from datetime import timedelta

import grpc
from pebble import ProcessPool
from pixelflow.v1 import worker_pb2, worker_pb2_grpc

from common.auth_client import TokenVerifier
from common.blobstore import open_blob_store
from common.kafka import HEARTBEATS_TOPIC, AsyncProducer, ClientFaults, TopicListener
from common.logging import configure_logging
from common.server import grpc_options, run_service, serve
from common.tracing import client_interceptors, configure_tracing
from worker_svc.config import WorkerSettings
from worker_svc.consumer import TaskConsumer
from worker_svc.imaging import ImageLimits
from worker_svc.lifecycle_client import LifecycleClient
from worker_svc.metrics import watch_pool
from worker_svc.processor import ProcessingPolicy, TaskProcessor, WorkerStats
from worker_svc.servicer import WorkerStatusServicer
from worker_svc.sources import FetchPolicy, SourceFetcher, parse_allowed_networks
from worker_svc.status import ConsumerLag, WorkerRegistry, publish_heartbeats

log = logging.getLogger("worker_svc")


def start_pool(settings: WorkerSettings) -> ProcessPool:
    """The image process pool, started before anything else: its forkserver is forked from this
    process while no gRPC or Kafka thread exists yet (forking a process with gRPC threads can
    crash it), and every later process, including those that replace one stopped at its
    deadline, is forked from that server with the imaging modules already imported."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["worker_svc.imaging"])
    pool = ProcessPool(max_workers=settings.pool_size, context=context)
    pool.schedule(os.getpid).result(timeout=60)  # the forkserver and the workers exist from here on
    return pool


async def run(settings: WorkerSettings, pool: ProcessPool, internal_secret: str) -> None:
    worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    faults = ClientFaults(asyncio.get_running_loop())
    producer = AsyncProducer(settings.kafka_bootstrap, client_id=f"worker-{worker_id}", faults=faults)
    # More tasks in flight than pool processes: claiming, fetching and storing are I/O, and
    # the pool (pool_size processes) is what bounds the CPU work and the image memory.
    in_flight_limit = settings.pool_size * 4
    if settings.pool_size < settings.worker_concurrency:
        log.warning(
            "image pool smaller than the concurrency asked for, to stay within the memory budget",
            extra={"pool_size": settings.pool_size, "concurrency": settings.worker_concurrency},
        )
    stats = WorkerStats(capacity=in_flight_limit)
    watch_pool(stats, settings.pool_size)

    blobs = open_blob_store(settings)
    # Its calls to api_svc carry the task's trace (each is a client span of it).
    api_channel = grpc.aio.insecure_channel(
        settings.api_addr, options=grpc_options(settings), interceptors=client_interceptors()
    )
    lifecycle = LifecycleClient(
        api_channel,
        internal_secret,
        worker_id,
        timedelta(seconds=settings.worker_lease_seconds),
        max_attempts=settings.worker_max_attempts,
    )
    processor = TaskProcessor(
        claims=lifecycle,
        blobs=blobs,
        fetcher=SourceFetcher(
            FetchPolicy(
                max_bytes=settings.fetch_max_bytes,
                connect_timeout=settings.fetch_connect_timeout_seconds,
                read_timeout=settings.fetch_read_timeout_seconds,
                allowed_networks=parse_allowed_networks(settings.fetch_allowed_networks),
            )
        ),
        pool=pool,
        producer=producer,
        policy=ProcessingPolicy(
            max_attempts=settings.worker_max_attempts,
            retry_backoff_seconds=settings.worker_retry_backoff_seconds,
            deadline_seconds=settings.worker_task_deadline_seconds,
            limits=ImageLimits(
                max_pixels=settings.image_max_pixels,
                max_frames=settings.image_max_frames,
                max_result_bytes=settings.image_max_result_bytes,
            ),
            fast_shrink_on_load=settings.image_fast_shrink_on_load,
        ),
        stats=stats,
        worker_id=worker_id,
    )
    consumer = TaskConsumer(settings.kafka_bootstrap, processor, in_flight_limit, worker_id, faults)
    registry = WorkerRegistry(timedelta(seconds=settings.worker_dead_after_seconds))
    heartbeat_listener = TopicListener(
        settings.kafka_bootstrap,
        [HEARTBEATS_TOPIC],
        registry.on_record,
        asyncio.get_running_loop(),
        name="worker-heartbeats",
        faults=faults,
        from_beginning=True,
    )
    heartbeat_listener.start()
    lag = ConsumerLag(settings.kafka_bootstrap)
    verifier = TokenVerifier.from_settings(settings)
    await verifier.start()
    background = [
        asyncio.create_task(consumer.run()),
        asyncio.create_task(publish_heartbeats(producer, worker_id, stats, settings.worker_heartbeat_seconds)),
        # A third of the lease: two renewals may fail (a store hiccup) before another worker may take over.
        asyncio.create_task(processor.keep_leases(settings.worker_lease_seconds / 3)),
    ]

    async def shutdown() -> None:
        await consumer.stop(settings.shutdown_grace_seconds)
        for job in background:
            job.cancel()
        for job in background:
            with contextlib.suppress(asyncio.CancelledError):
                await job
        heartbeat_listener.stop()
        lag.close()
        await verifier.close()
        producer.close()
        pool.stop()  # type: ignore[no-untyped-call]
        pool.join(timeout=5)
        await blobs.close()
        await api_channel.close(None)

    await serve(
        settings=settings,
        port=settings.worker_status_port,
        service_names=[worker_pb2.DESCRIPTOR.services_by_name["WorkerStatusService"].full_name],
        register=lambda server: worker_pb2_grpc.add_WorkerStatusServiceServicer_to_server(
            WorkerStatusServicer(registry, lifecycle, lag, verifier), server
        ),
        on_shutdown=shutdown,
        # Fail closed: without fresh revocations no token can be trusted (common.auth_client).
        healthy=lambda: verifier.fresh,
        fatal=faults.fatal,
        authenticate=verifier.authenticate,
        metrics_port=settings.worker_metrics_port,
    )


def main() -> None:
    settings = WorkerSettings()
    configure_logging("worker_svc", settings.log_level)
    configure_tracing("worker_svc")
    internal_secret = settings.required_internal_secret("worker_svc")  # before the pool starts
    run_service(run(settings, start_pool(settings), internal_secret))


if __name__ == "__main__":
    main()
