"""Translates QuotaService (and AdminService's quota calls) to api_svc.quotas and back; nothing else."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pixelflow.v1 import quota_pb2, quota_pb2_grpc

from api_svc.quotas import NAMES, TASKS_PER_DAY, Quotas, Usage
from common.auth_client import TokenVerifier

Context = grpc.aio.ServicerContext[Any, Any]
_LIMITS = {
    "active_tasks": quota_pb2.QUOTA_LIMIT_ACTIVE_TASKS,
    "tasks_per_day": quota_pb2.QUOTA_LIMIT_TASKS_PER_DAY,
    "stored_bytes": quota_pb2.QUOTA_LIMIT_STORED_BYTES,
    "max_upload_bytes": quota_pb2.QUOTA_LIMIT_MAX_UPLOAD_BYTES,
}


def usage_to_proto(user_id: str, usage: Usage) -> quota_pb2.Usage:
    entries = []
    for name in NAMES:
        entry = quota_pb2.QuotaUsage(
            limit=_LIMITS[name],
            name=name,
            value=usage.limits.value(name),
            used=usage.used[name],
            overridden=name in usage.limits.overridden,
        )
        if name == TASKS_PER_DAY:
            resets = Timestamp()
            resets.FromDatetime(usage.day_resets_at)
            entry.resets_at.CopyFrom(resets)
        entries.append(entry)
    return quota_pb2.Usage(user_id=user_id, quotas=entries)


def overrides_to_proto(overrides: dict[str, int]) -> quota_pb2.QuotaOverrides:
    return quota_pb2.QuotaOverrides(**{name: value for name, value in overrides.items() if name in NAMES})


def overrides_from_proto(message: quota_pb2.QuotaOverrides) -> dict[str, int]:
    """The limits the message sets (proto3 `optional`: present or not)."""
    present = {descriptor.name for descriptor, _ in message.ListFields()}
    return {name: int(getattr(message, name)) for name in NAMES if name in present}


class QuotaServicer(quota_pb2_grpc.QuotaServiceServicer):
    def __init__(self, quotas: Quotas, verifier: TokenVerifier) -> None:
        self._quotas = quotas
        self._verifier = verifier

    async def GetUsage(self, request: quota_pb2.GetUsageRequest, context: Context) -> quota_pb2.Usage:
        owner = (await self._verifier.caller(context.invocation_metadata())).user_id
        return usage_to_proto(owner, await self._quotas.usage(owner))
