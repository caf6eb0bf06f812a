"""Translates WebhookService RPCs to the domain service and back, and a delivery document to
the proto a task shows; nothing else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pixelflow.v1 import webhook_pb2, webhook_pb2_grpc

from api_svc.webhooks.service import WebhookSettingsService
from api_svc.webhooks.signing import secret_hint
from common.auth_client import TokenVerifier
from tasks.model import as_utc

Context = grpc.aio.ServicerContext[Any, Any]
Document = dict[str, Any]


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(as_utc(value))
    return stamp


def settings_to_proto(document: Document) -> webhook_pb2.WebhookSettings:
    secret = document.get("secret")
    return webhook_pb2.WebhookSettings(
        default_url=document.get("default_url") or "",
        has_secret=bool(secret),
        secret_hint=secret_hint(secret) if secret else "",
        secret_rotated_at=_timestamp(document.get("secret_rotated_at")),
    )


def delivery_to_proto(document: Document) -> webhook_pb2.WebhookDelivery:
    return webhook_pb2.WebhookDelivery(
        id=document["_id"],
        type=document["type"],
        url=document["url"],
        state=webhook_pb2.WebhookDeliveryState.Value(f"WEBHOOK_DELIVERY_STATE_{document['state']}"),
        attempts=[
            webhook_pb2.WebhookAttempt(
                attempted_at=_timestamp(attempt["at"]),
                http_status=int(attempt.get("http_status") or 0),
                error=attempt.get("error") or "",
                duration_ms=int(attempt.get("duration_ms") or 0),
            )
            for attempt in document.get("attempts", [])
        ],
        created_at=_timestamp(document.get("created_at")),
        next_attempt_at=_timestamp(document.get("next_attempt_at")),
        outcome=document.get("outcome") or "",
    )


class WebhookServicer(webhook_pb2_grpc.WebhookServiceServicer):
    def __init__(self, service: WebhookSettingsService, verifier: TokenVerifier) -> None:
        self._service = service
        self._verifier = verifier

    async def _owner(self, context: Context) -> str:
        return (await self._verifier.caller(context.invocation_metadata())).user_id

    async def GetWebhookSettings(
        self, request: webhook_pb2.GetWebhookSettingsRequest, context: Context
    ) -> webhook_pb2.WebhookSettings:
        return settings_to_proto(await self._service.settings(await self._owner(context)))

    async def UpdateWebhookSettings(
        self, request: webhook_pb2.UpdateWebhookSettingsRequest, context: Context
    ) -> webhook_pb2.WebhookSettings:
        return settings_to_proto(await self._service.update(await self._owner(context), request.default_url))

    async def RotateWebhookSecret(
        self, request: webhook_pb2.RotateWebhookSecretRequest, context: Context
    ) -> webhook_pb2.RotateWebhookSecretResponse:
        secret, settings = await self._service.rotate(await self._owner(context))
        return webhook_pb2.RotateWebhookSecretResponse(secret=secret, settings=settings_to_proto(settings))
