"""Runs api_svc; the one place that builds its objects."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from datetime import timedelta

import grpc
from pixelflow.internal.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from pixelflow.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    preset_pb2,
    preset_pb2_grpc,
    quota_pb2,
    quota_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
    webhook_pb2,
    webhook_pb2_grpc,
)

from api_svc.admin import AdminServicer
from api_svc.blob_sweep import sweep_forever
from api_svc.config import ApiSettings
from api_svc.dead_letters import DeadLetters
from api_svc.lifecycle_servicer import TaskLifecycleServicer
from api_svc.preset_repository import PresetRepository
from api_svc.preset_servicer import PresetServicer
from api_svc.quota_repository import QuotaRepository
from api_svc.quota_servicer import QuotaServicer
from api_svc.quotas import QuotaLimits, prune_day_marks_forever
from api_svc.repository import TaskRepository
from api_svc.service import Limits, TaskService
from api_svc.servicer import TaskServicer
from api_svc.watch import WatchHub
from api_svc.webhooks.backoff import RetryPolicy
from api_svc.webhooks.dispatcher import Dispatcher
from api_svc.webhooks.repository import WebhookRepository
from api_svc.webhooks.sender import WebhookSender
from api_svc.webhooks.service import WebhookSettingsService
from api_svc.webhooks.servicer import WebhookServicer
from common.auth_client import TokenVerifier
from common.blobstore import open_blob_store
from common.egress import parse_allowed_networks
from common.internal_auth import internal_authenticator
from common.kafka import STATUS_TOPIC, AsyncProducer, ClientFaults, TopicListener
from common.logging import configure_logging
from common.server import run_service, serve


async def run(settings: ApiSettings) -> None:
    internal_secret = settings.required_internal_secret("api_svc")
    mongo = settings.mongo_client()
    repository = TaskRepository(mongo[settings.mongo_database])
    await repository.ensure_indexes()
    presets = PresetRepository(mongo[settings.mongo_database])
    await presets.ensure_indexes()
    quotas = QuotaRepository(mongo[settings.mongo_database])
    await quotas.ensure_indexes()
    webhook_repository = WebhookRepository(mongo[settings.mongo_database])
    await webhook_repository.ensure_indexes()
    webhooks = WebhookSettingsService(webhook_repository)
    dispatcher = Dispatcher(
        webhook_repository,
        WebhookSender(parse_allowed_networks(settings.webhook_allowed_networks), settings.webhook_timeout_seconds),
        RetryPolicy(
            first_backoff_seconds=settings.webhook_first_backoff_seconds,
            max_backoff_seconds=settings.webhook_max_backoff_seconds,
            retry_seconds=settings.webhook_retry_seconds,
        ),
        public_base_url=settings.public_base_url,
        replica_id=f"api-{socket.gethostname()}-{os.getpid()}",
        timeout_seconds=settings.webhook_timeout_seconds,
        poll_seconds=settings.webhook_poll_seconds,
    )
    verifier = TokenVerifier.from_settings(settings)
    await verifier.start()
    faults = ClientFaults(asyncio.get_running_loop())
    producer = AsyncProducer(
        settings.kafka_bootstrap,
        client_id=f"api-{socket.gethostname()}",
        faults=faults,
        delivery_timeout_ms=settings.kafka_delivery_timeout_ms,
    )
    hub = WatchHub()
    listener = TopicListener(
        settings.kafka_bootstrap,
        [STATUS_TOPIC],
        hub.on_status_record,
        asyncio.get_running_loop(),
        name="api-status",
        faults=faults,
    )
    listener.start()
    blobs = open_blob_store(settings)
    service = TaskService(
        repository,
        blobs,
        producer,
        hub,
        Limits(
            max_upload_bytes=settings.max_upload_bytes,
            max_inline_upload_bytes=settings.max_inline_upload_bytes,
            max_watches_per_user=settings.max_watches_per_user,
            max_presets_per_user=settings.max_presets_per_user,
            quotas=QuotaLimits(
                active_tasks=settings.quota_active_tasks,
                tasks_per_day=settings.quota_tasks_per_day,
                stored_bytes=settings.quota_stored_bytes,
                max_upload_bytes=settings.quota_max_upload_bytes,
            ),
        ),
        presets=presets,
        quotas=quotas,
        webhooks=webhooks,
        ended=dispatcher.wake,
    )
    background = [
        asyncio.create_task(service.relay_outbox(settings.outbox_interval_seconds, settings.stranded_task_seconds)),
        asyncio.create_task(dispatcher.run()),
        asyncio.create_task(
            sweep_forever(
                repository,
                blobs,
                settings.blob_sweep_interval_seconds,
                timedelta(seconds=settings.blob_sweep_grace_seconds),
            )
        ),
        asyncio.create_task(prune_day_marks_forever(quotas)),
    ]

    async def shutdown() -> None:
        for job in background:
            job.cancel()
        for job in background:
            with contextlib.suppress(asyncio.CancelledError):
                await job
        await service.drain(grace_seconds=settings.kafka_delivery_timeout_ms / 1000 + 1)
        await blobs.close()
        listener.stop()
        producer.close()
        await verifier.close()
        await mongo.close()

    def register(server: grpc.aio.Server) -> None:
        task_pb2_grpc.add_TaskServiceServicer_to_server(
            TaskServicer(service, verifier, settings.public_base_url), server
        )
        admin = AdminServicer(service, DeadLetters(settings.kafka_bootstrap), verifier, settings.public_base_url)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(admin, server)
        preset_pb2_grpc.add_PresetServiceServicer_to_server(PresetServicer(service.presets, verifier), server)
        quota_pb2_grpc.add_QuotaServiceServicer_to_server(QuotaServicer(service.quotas, verifier), server)
        webhook_pb2_grpc.add_WebhookServiceServicer_to_server(WebhookServicer(webhooks, verifier), server)
        lifecycle = TaskLifecycleServicer(repository, ended=dispatcher.wake)
        lifecycle_pb2_grpc.add_TaskLifecycleServiceServicer_to_server(lifecycle, server)

    await serve(
        settings=settings,
        port=settings.api_port,
        service_names=[
            task_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name,
            admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
            preset_pb2.DESCRIPTOR.services_by_name["PresetService"].full_name,
            quota_pb2.DESCRIPTOR.services_by_name["QuotaService"].full_name,
            webhook_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name,
        ],
        register=register,
        on_shutdown=shutdown,
        # Fail closed: without fresh revocations no token can be trusted (common.auth_client).
        healthy=lambda: verifier.fresh,
        fatal=faults.fatal,
        authenticate=verifier.authenticate,
        internal={
            lifecycle_pb2.DESCRIPTOR.services_by_name["TaskLifecycleService"].full_name: internal_authenticator(
                internal_secret
            )
        },
    )


def main() -> None:
    settings = ApiSettings()
    configure_logging("api_svc", settings.log_level)
    run_service(run(settings))


if __name__ == "__main__":
    main()
