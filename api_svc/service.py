"""TaskService in domain terms: validation, storage, queueing, watching. No gRPC here."""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pixelflow.v1 import task_pb2

from api_svc.ids import checked_id, new_id
from api_svc.preset_repository import PresetRepository
from api_svc.presets import PresetService
from api_svc.quota_repository import QuotaRepository
from api_svc.quotas import DEFAULT_QUOTAS, QuotaLimits, Quotas
from api_svc.repository import Document, TaskRepository
from api_svc.uploads import Uploads
from api_svc.watch import WatchHub
from api_svc.webhooks.service import WebhookSettingsService
from common.blobstore import Blob, BlobNotFound, BlobStore
from common.blobstore.keys import owned_by_task
from common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from common.kafka import STATUS_TOPIC, TASKS_TOPIC, AsyncProducer, PublishError
from common.logging import request_id_var
from tasks.events import StatusEvent, Verdict
from tasks.model import Status, as_utc, message_to_document, operations_from_document, result_blob_keys, utcnow
from tasks.source_urls import validate_source_url

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# A watcher re-reads its task this often even without events: a safety net, not the mechanism.
_WATCH_SAFETY_INTERVAL = 15.0


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int
    max_inline_upload_bytes: int
    # Open WatchTask streams per user on one replica: each holds a connection and a wake-up queue.
    max_watches_per_user: int = 32
    # Presets one user may keep (PresetService).
    max_presets_per_user: int = 100
    # Each user's quotas unless an administrator overrides them (api_svc.quotas).
    quotas: QuotaLimits = DEFAULT_QUOTAS


class TaskService:
    def __init__(
        self,
        repository: TaskRepository,
        blobs: BlobStore,
        producer: AsyncProducer,
        hub: WatchHub,
        limits: Limits,
        *,
        presets: PresetRepository,
        quotas: QuotaRepository,
        webhooks: WebhookSettingsService | None = None,
        ended: Callable[[], None] = lambda: None,
    ) -> None:
        self._repository = repository
        # The callback URL a new task takes (None: this service announces no ends, as in tests
        # of other parts); `ended` wakes the webhook dispatcher after an outcome committed here.
        self._webhooks = webhooks
        self._ended = ended
        self._blobs = blobs
        self.quotas = Quotas(quotas, limits.quotas)
        self.uploads = Uploads(
            repository, blobs, limits.max_upload_bytes, limits.max_inline_upload_bytes, quotas=self.quotas
        )
        # PresetService rides on the same uploads (a preset's watermark is checked as a task's).
        self.presets = PresetService(presets, self.uploads, limits.max_presets_per_user)
        self._producer = producer
        self._hub = hub
        self._limits = limits
        self._background: set[asyncio.Task[None]] = set()
        self._watches: collections.Counter[str] = collections.Counter()

    # -- create ------------------------------------------------------------------------------
    async def create(self, owner_id: str, request: task_pb2.CreateTaskRequest) -> Document:
        source, inline = await self._validate_source(owner_id, request)
        callback_url = await self._callback_url(owner_id, request.callback_url)
        key = request.idempotency_key
        # What the request itself says (with a preset: its name, not its contents), so that a
        # retry is the same request even if the preset changed in between.
        variants = [message_to_document(variant) for variant in request.variants]
        fingerprint = ""
        if key:
            inline_sha256 = hashlib.sha256(inline).hexdigest() if inline is not None else None
            fingerprint = idempotency_fingerprint(
                request,
                inline_sha256,
                [message_to_document(op) for op in request.operations],
                message_to_document(request.output),
                variants,
            )
        if request.preset:
            # A retry finds its task even if the preset has been deleted since.
            if key and (earlier := await self._earlier(owner_id, key, fingerprint)) is not None:
                return earlier
            # "preset XOR operations/output" is the proto's rule; the task keeps a copy.
            operations, output = await self.presets.expand(owner_id, request.preset)
        else:
            operations = [message_to_document(op) for op in request.operations]
            output = message_to_document(request.output)
        # The same checks whether the pipeline came in the request or from a preset.
        await self.uploads.check_operations(owner_id, operations_from_document(operations))
        for index, variant in enumerate(request.variants):
            await self.uploads.check_operations(owner_id, variant.operations, f"variants[{index}].operations")
        task_id = new_id()
        if key:
            task_id, existing = await self._reserve(owner_id, key, task_id, fingerprint)
            if existing is not None:
                return existing
        # After the idempotency key: a retry that finds its task counts nothing again.
        admission = await self.quotas.admit_task(owner_id, task_id, len(inline) if inline is not None else 0)
        now = utcnow()
        document: Document = {
            "_id": task_id,
            "owner_id": owner_id,
            "status": Status.PENDING.value,
            "source": source,
            "operations": operations,
            "output": output,
            "preset": request.preset or None,
            "skip_auto_orient": request.skip_auto_orient,
            "idempotency_key": key or None,
            **({"variants": variants} if variants else {}),
            # The bytes of an inline source, which the task owns: its owner's stored_bytes quota.
            **({"inline_bytes": len(inline)} if inline is not None else {}),
            "attempts": 0,
            "callback_url": callback_url,
            "created_at": now,
            "updated_at": now,
        }
        try:
            if inline is not None:
                await self.uploads.store_inline(task_id, source, inline)  # sets source.upload.sha256
            try:
                inserted = await self._repository.insert(document)
            except BaseException:
                await self._delete_owned_blobs(document)
                raise
        except BaseException:
            await self.quotas.give_back(admission)
            raise
        if not inserted:  # a concurrent retry of the same create got there first
            await self.quotas.give_back(admission)  # which holds its own
            existing = await self._repository.get(owner_id, task_id)
            if existing is None:
                raise Unavailable("the task is being created by another request; try again")
            return existing
        # Stored is accepted: Kafka's confirmation is not waited for (see _queue).
        self._in_background(self._queue(task_id))
        log.info("task created", extra={"task_id": task_id, "owner_id": owner_id})
        return document

    async def _callback_url(self, owner_id: str, requested: str) -> str | None:
        return None if self._webhooks is None else await self._webhooks.callback_for(owner_id, requested)

    async def _earlier(self, owner_id: str, key: str, fingerprint: str) -> Document | None:
        """The task an earlier create with this key made, if it exists; ALREADY_EXISTS if the
        key was used with different parameters."""
        earlier = await self._repository.idempotency_record(owner_id, key)
        if earlier is None:
            return None
        if earlier["fingerprint"] != fingerprint:
            raise AlreadyExists("this idempotency_key was already used with different parameters; use a new key")
        return await self._repository.get(owner_id, earlier["task_id"])

    async def _reserve(self, owner_id: str, key: str, task_id: str, fingerprint: str) -> tuple[str, Document | None]:
        """Claims the idempotency key for `task_id` before the task exists: (the id to create
        the task under, the task if it exists already). A create cut short between the key and
        the task leaves a key whose task is missing; its retry completes it under the same id,
        so a key never yields a second task."""
        earlier = await self._repository.claim_idempotency_key(owner_id, key, task_id, fingerprint)
        if earlier is None:
            return task_id, None
        if earlier["fingerprint"] != fingerprint:
            raise AlreadyExists("this idempotency_key was already used with different parameters; use a new key")
        return earlier["task_id"], await self._repository.get(owner_id, earlier["task_id"])

    async def _validate_source(
        self, owner_id: str, request: task_pb2.CreateTaskRequest
    ) -> tuple[Document, bytes | None]:
        match request.WhichOneof("source"):
            case "source_url":
                return {"url": validate_source_url(request.source_url)}, None
            case "upload_id":
                return await self.uploads.source_from_upload(owner_id, request.upload_id), None
            case "upload":
                content = request.upload.content
                return self.uploads.inline_source(content, request.upload.filename), content
        raise InvalidArgument(
            "give the image as source_url, upload_id or upload (exactly one)", field="source", rule="required"
        )

    async def _delete_owned_blobs(self, document: Document) -> None:
        """The task's own blobs (an inline source, its result); an upload outlives its tasks.
        A result of an earlier attempt that lost its task is the sweep's (api_svc.blob_sweep)."""
        keys = {document["source"].get("upload", {}).get("blob_key"), *result_blob_keys(document.get("result"))}
        for key in keys:
            if key and owned_by_task(key, document["_id"]):
                await self._blobs.delete(key)

    async def _queue(self, task_id: str) -> None:
        """Publishes a stored task. Only if Kafka does not confirm is the task written to the
        outbox, which the relay retries every few seconds; if even that write fails (or this
        process dies first), the relay's scan for stranded PENDING tasks still finds it."""
        try:
            await self._send(task_id)
        except PublishError as exc:
            log.warning("task not queued yet; the outbox will retry", extra={"task_id": task_id, "error": str(exc)})
            try:
                await self._repository.add_to_outbox(task_id)
            except Unavailable:
                log.warning("outbox not written; the stranded-task scan will queue it", extra={"task_id": task_id})

    def _in_background(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, grace_seconds: float) -> None:
        """Lets queued publishes finish (shutdown): what is left is the relay's."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=grace_seconds)

    async def _send(self, task_id: str) -> None:
        headers = {"x-request-id": request_id_var.get() or ""}
        await self._producer.publish(TASKS_TOPIC, task_id, json.dumps({"task_id": task_id}).encode(), headers)

    async def relay_outbox(self, interval: float, stranded_after: float) -> None:
        """Runs for the service's life: publishes the tasks in the outbox, and republishes
        stranded ones (see TaskRepository.stranded), each at most once per `stranded_after`
        seconds from this replica — or, if a stranded task already has a committed outcome,
        writes that onto it instead (tasks.lifecycle)."""
        republished: dict[str, float] = {}
        while True:
            await asyncio.sleep(interval)
            try:
                for task_id in await self._repository.unpublished():
                    try:
                        await self._send(task_id)
                    except PublishError:
                        break  # Kafka is still down: try the rest next round
                    await self._repository.mark_published(task_id)
                now = asyncio.get_running_loop().time()
                republished = {k: t for k, t in republished.items() if now - t < stranded_after}
                for task_id in await self._repository.stranded(timedelta(seconds=stranded_after)):
                    if task_id in republished:
                        continue
                    settled = await self._repository.settle_if_final(task_id)
                    if settled is not None:  # finished, but its writer died before the task showed it
                        log.warning("settled a half-written outcome", extra={"task_id": task_id})
                        self._ended()
                        self._announce(StatusEvent(task_id, Status(settled["status"]), settled))
                        continue
                    log.warning("republishing a stranded task", extra={"task_id": task_id})
                    republished[task_id] = now
                    await self._send(task_id)
            except Exception:
                log.exception("outbox relay round failed")

    def _announce(self, event: StatusEvent) -> None:
        # Fire and forget: this replica's watchers are told at once, the others by the event.
        self._hub.publish(event.task_id, event)
        self._producer.send(STATUS_TOPIC, event.task_id, event.encode())

    # -- read --------------------------------------------------------------------------------
    async def get(self, owner_id: str, task_id: str) -> Document:
        document = await self._repository.get(owner_id, _checked_id(task_id))
        if document is None:
            raise NotFound(f"no task {task_id}")
        return document

    async def webhook_deliveries(self, document: Document) -> list[Document]:
        """The webhook events of a task's ends, with their attempts (GetTask shows them)."""
        return [] if self._webhooks is None else await self._webhooks.deliveries(document)

    async def list(
        self, owner_id: str, page_size: int, page_token: str, status: task_pb2.TaskStatus.ValueType
    ) -> tuple[list[Document], str]:
        # page_size ≥ 0 and a defined status: the proto's rules (common.validation).
        limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        wanted = None if status == task_pb2.TASK_STATUS_UNSPECIFIED else Status.from_proto(status)
        documents = await self._repository.page(
            owner_id, status=wanted, limit=limit + 1, after=_decode_page_token(page_token)
        )
        next_token = ""
        if len(documents) > limit:
            documents = documents[:limit]
            last = documents[-1]
            next_token = _encode_page_token(as_utc(last["created_at"]), last["_id"])
        return documents, next_token

    async def watch(self, owner_id: str, task_id: str) -> AsyncIterator[Document]:
        if self._watches[owner_id] >= self._limits.max_watches_per_user:
            raise ResourceExhausted(
                f"at most {self._limits.max_watches_per_user} tasks can be watched at once; "
                "close a watch or wait for a task to finish",
                retry_after_seconds=5,
            )
        self._watches[owner_id] += 1
        try:
            async for document in self._watch(owner_id, task_id):
                yield document
        finally:
            self._watches[owner_id] -= 1
            if self._watches[owner_id] <= 0:
                del self._watches[owner_id]

    async def _watch(self, owner_id: str, task_id: str) -> AsyncIterator[Document]:
        with self._hub.subscribe(_checked_id(task_id)) as subscription:
            document = await self.get(owner_id, task_id)
            yield document
            while not Status(document["status"]).terminal:
                events = await subscription.next(_WATCH_SAFETY_INTERVAL)
                latest = _merged(document, events)
                if latest is None:  # the events cannot tell: ask the store
                    latest = await self.get(owner_id, task_id)
                if (latest["status"], latest.get("updated_at")) != (document["status"], document.get("updated_at")):
                    yield latest
                document = latest

    async def result(self, owner_id: str, task_id: str, variant: str | None = None) -> tuple[Blob, str]:
        """The result (or one variant's), open for streaming, and its content type."""
        document = await self.get(owner_id, task_id)
        names = [each["name"] for each in document.get("variants", [])]
        if variant is not None and variant not in names:
            known = f"its variants are {', '.join(names)}" if names else "it has no variants"
            raise NotFound(f"task {task_id} has no variant {variant!r}; {known}")
        if document["status"] != Status.COMPLETED.value:
            raise FailedPrecondition(
                f"task {task_id} is {document['status']}; its result can be fetched once it is COMPLETED"
            )
        result = document["result"]
        if variant is not None:
            result = next((each for each in result.get("variants", []) if each["name"] == variant), {})
        try:
            blob = await self._blobs.open(result["blob_key"])
        except (BlobNotFound, KeyError) as exc:
            raise NotFound(f"the result of task {task_id} is gone") from exc
        return blob, result["content_type"]

    # -- change ------------------------------------------------------------------------------
    async def cancel(self, owner_id: str, task_id: str) -> Document:
        cancelled = await self._repository.cancel(owner_id, _checked_id(task_id))
        if cancelled is None:
            current = await self.get(owner_id, task_id)  # NOT_FOUND if it is not theirs
            raise FailedPrecondition(f"task {task_id} is already {current['status']} and cannot be cancelled")
        current, written = cancelled
        document = {**current, **written}
        self._announce(StatusEvent(task_id, Status.CANCELLED, document))
        self._ended()
        return document

    async def replay(self, task_id: str) -> tuple[str, Document]:
        """An operator runs a FAILED task again (AdminService): reopened, announced, queued.
        Anything else is left as it is and said so ("finished", "running")."""
        reopened = await self._repository.reopen(_checked_id(task_id))
        if reopened is None:
            raise NotFound(f"no task {task_id} (it was deleted)")
        outcome, document = reopened
        if outcome == "replayed":
            log.warning("task replayed by an operator", extra={"task_id": task_id, "replays": document["replays"]})
            self._announce(StatusEvent(task_id, Status.PENDING, document))
            await self._queue(task_id)
        return outcome, document

    async def delete(self, owner_id: str, task_id: str) -> None:
        document = await self._repository.delete(owner_id, _checked_id(task_id))
        if document is None:
            raise NotFound(f"no task {task_id}")
        await self._delete_owned_blobs(document)
        self._hub.publish(task_id, None)  # its watchers read it again, and find it gone
        log.info("task deleted", extra={"task_id": task_id})


def _merged(document: Document, events: list[StatusEvent] | None) -> Document | None:
    """`document` with the events applied; None if one of them (or their absence) means the
    task itself must be read."""
    if events is None:
        return None
    for event in events:
        match event.verdict(document):
            case Verdict.APPLY:
                document = event.apply(document)
            case Verdict.REREAD:
                return None
            case Verdict.STALE:
                pass
    return document


def _checked_id(task_id: str) -> str:
    return checked_id(task_id, "task_id")


def idempotency_fingerprint(
    request: task_pb2.CreateTaskRequest,
    inline_sha256: str | None,
    operations: list[Document],
    output: Document,
    variants: Sequence[Document] = (),
) -> str:
    """What makes two requests 'the same' for idempotency: everything but the key."""
    which = request.WhichOneof("source")
    canonical: dict[str, Any] = {
        "source_url": request.source_url if which == "source_url" else None,
        "upload_id": request.upload_id if which == "upload_id" else None,
        "upload_sha256": inline_sha256,
        "operations": operations,
        "output": output,
        "skip_auto_orient": request.skip_auto_orient,
    }
    # Each only when given: the fingerprints of keys stored before presets and variants stay the same.
    if request.preset:
        canonical["preset"] = request.preset
    if variants:
        canonical["variants"] = list(variants)
    if request.callback_url:
        canonical["callback_url"] = request.callback_url
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _encode_page_token(created_at: datetime, task_id: str) -> str:
    raw = json.dumps({"c": created_at.isoformat(), "i": task_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page_token(token: str) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        created_at, task_id = datetime.fromisoformat(raw["c"]), str(raw["i"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(
            "page_token is not one this service issued", field="page_token", rule="page_token.known"
        ) from exc
    return created_at, _checked_id(task_id)
