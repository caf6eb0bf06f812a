"""AdminService: dead letters and users' quotas for operators (admins only; PERMISSION_DENIED for
everyone else)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pixelflow.v1 import admin_pb2, admin_pb2_grpc

from api_svc.dead_letters import DeadLetter, DeadLetters, page_token, parse_page_token
from api_svc.quota_servicer import overrides_from_proto, overrides_to_proto, usage_to_proto
from api_svc.service import TaskService
from common.auth_client import TokenVerifier
from common.errors import FailedPrecondition, PermissionDenied
from tasks.model import task_to_proto

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_OUTCOMES = {
    "replayed": admin_pb2.REPLAY_OUTCOME_REPLAYED,
    "finished": admin_pb2.REPLAY_OUTCOME_ALREADY_FINISHED,
    "running": admin_pb2.REPLAY_OUTCOME_ALREADY_REPLAYED,
}


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, service: TaskService, dead_letters: DeadLetters, verifier: TokenVerifier, base_url: str) -> None:
        self._service = service
        self._dead_letters = dead_letters
        self._verifier = verifier
        self._base_url = base_url

    async def _admin(self, context: Context) -> str:
        """The calling administrator's user id; PERMISSION_DENIED for anyone else."""
        claims = await self._verifier.caller(context.invocation_metadata())
        if not claims.admin:
            raise PermissionDenied("this needs an administrator (python -m auth_svc grant-admin EMAIL)")
        return claims.user_id

    async def GetQuota(self, request: admin_pb2.GetQuotaRequest, context: Context) -> admin_pb2.UserQuota:
        await self._admin(context)
        return await self._user_quota(request.user_id)

    async def SetQuota(self, request: admin_pb2.SetQuotaRequest, context: Context) -> admin_pb2.UserQuota:
        by = await self._admin(context)
        # The token's user id is a UUID's canonical (lower-case) text; the proto's rule takes any case.
        user_id = request.user_id.lower()
        await self._service.quotas.set_overrides(user_id, overrides_from_proto(request.overrides), by)
        return await self._user_quota(user_id)

    async def _user_quota(self, user_id: str) -> admin_pb2.UserQuota:
        user_id = user_id.lower()
        quotas = self._service.quotas
        return admin_pb2.UserQuota(
            user_id=user_id,
            overrides=overrides_to_proto(await quotas.overrides(user_id)),
            usage=usage_to_proto(user_id, await quotas.usage(user_id)),
        )

    async def ListDeadLetters(
        self, request: admin_pb2.ListDeadLettersRequest, context: Context
    ) -> admin_pb2.ListDeadLettersResponse:
        await self._admin(context)
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        found, following = await self._dead_letters.page(parse_page_token(request.page_token), size)
        return admin_pb2.ListDeadLettersResponse(
            dead_letters=[_to_proto(letter) for letter in found],
            next_page_token="" if following is None else page_token(*following),
        )

    async def ReplayDeadLetter(
        self, request: admin_pb2.ReplayDeadLetterRequest, context: Context
    ) -> admin_pb2.ReplayDeadLetterResponse:
        await self._admin(context)
        letter = await self._dead_letters.at(request.partition, request.offset)
        if letter.task_id is None:
            raise FailedPrecondition(
                "this dead letter names no task (its message could not be read); there is nothing to run again"
            )
        outcome, document = await self._service.replay(letter.task_id)
        return admin_pb2.ReplayDeadLetterResponse(
            outcome=_OUTCOMES[outcome], task=task_to_proto(document, self._base_url)
        )


def _to_proto(letter: DeadLetter) -> admin_pb2.DeadLetter:
    record = letter.record
    source: dict[str, Any] = record.get("source") or {}
    when = letter.at
    at = None
    if when is not None:
        at = Timestamp()
        at.FromDatetime(when)
    return admin_pb2.DeadLetter(
        partition=letter.partition,
        offset=letter.offset,
        task_id=letter.task_id or "",
        error_code=str(record.get("code") or ""),
        error_message=str(record.get("message") or ""),
        attempts=int(record.get("attempts") or 0),
        worker_id=str(record.get("worker_id") or ""),
        dead_lettered_at=at,
        source=admin_pb2.DeadLetterSource(
            topic=str(source.get("topic") or ""),
            partition=int(source.get("partition") or 0),
            offset=int(source.get("offset") or 0),
            key=str(source.get("key") or ""),
            payload=letter.source_payload(),
            headers={str(k): str(v) for k, v in (source.get("headers") or {}).items()},
        ),
    )
