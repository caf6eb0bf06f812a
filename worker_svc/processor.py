"""One task, start to finish: claim, fetch the source, run the pipeline in the process pool,
store the result, record the outcome. Failures become a stable code on the task."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from pebble import ProcessExpired, ProcessPool

from common.blobstore import BlobNotFound, BlobStore
from common.blobstore.keys import result_key, upload_key
from common.failpoints import failpoint
from common.kafka import DEAD_LETTER_TOPIC, STATUS_TOPIC, AsyncProducer
from common.logging import task_id_var
from tasks.events import StatusEvent
from tasks.failures import FailureCode
from tasks.lifecycle import Claim, ClaimOutcome
from tasks.model import Status, as_utc, operations_from_document, output_from_document, variants_from_document
from tasks.operations import Watermark, parse_operations, parse_output
from worker_svc.byte_cache import WATERMARK_CACHE_BYTES, BytesCache
from worker_svc.delivery import delivery_var
from worker_svc.imaging import ImageError, ImageLimits, ProcessedImage, Variant, process_variants
from worker_svc.lifecycle_client import LifecycleClient
from worker_svc.metrics import observe_completed, observe_stages, observe_store
from worker_svc.retry import UNAVAILABLE, until_available
from worker_svc.sources import SourceError, SourceFetcher

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)


@dataclass
class WorkerStats:
    capacity: int
    in_flight: int = 0
    in_pool: int = 0  # jobs handed to the image pool and not back yet (queued there included)
    processed: int = 0
    failed: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(tz=UTC))


@dataclass(frozen=True)
class ProcessingPolicy:
    max_attempts: int
    retry_backoff_seconds: float
    deadline_seconds: float
    limits: ImageLimits
    fast_shrink_on_load: bool = False


class TaskFailedError(Exception):
    def __init__(self, code: FailureCode, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        # Recorded as the code's name (a plain str in the task document and the dead letter).
        self.code, self.message, self.retryable = FailureCode(code).value, message, retryable


class TaskProcessor:
    def __init__(
        self,
        *,
        claims: LifecycleClient,
        blobs: BlobStore,
        fetcher: SourceFetcher,
        pool: ProcessPool,
        producer: AsyncProducer,
        policy: ProcessingPolicy,
        stats: WorkerStats,
        worker_id: str,
    ) -> None:
        self._claims = claims
        self._blobs = blobs
        self._fetcher = fetcher
        self._pool = pool
        self._producer = producer
        self._policy = policy
        self.stats = stats
        self._worker_id = worker_id
        # Tasks this process is handling (retries included), with the attempt each holds once
        # claimed (for lease renewal): the claim resumes an attempt of ours only for the
        # coroutine holding the task, never for a duplicate message.
        self._held: dict[str, Claim | None] = {}
        self._watermarks = BytesCache(WATERMARK_CACHE_BYTES)

    async def handle(self, task_id: str) -> None:
        """Returns when the message may be acknowledged (the task's outcome is recorded). While
        the store or Kafka is unavailable it keeps trying (worker_svc.retry), resuming the attempt
        it holds; a second message for a task already in hand here is acknowledged at once."""
        task_id_var.set(task_id)
        if task_id in self._held:
            log.info("task already in hand here; acknowledging the duplicate")
            return
        self._held[task_id] = None
        try:
            await until_available(lambda: self._handle_once(task_id))
        finally:
            del self._held[task_id]

    async def _handle_once(self, task_id: str) -> None:
        claim = await self._claims.claim(task_id)
        if claim.outcome is ClaimOutcome.LEASED:
            # Another worker is on it. If that worker has died, the API's relay republishes the
            # task once the lease runs out; waiting here would only hold a slot.
            log.info("task leased by another worker; acknowledging")
            return
        if claim.outcome is ClaimOutcome.MISSING:
            await self.dead_letter(task_id, FailureCode.UNKNOWN_TASK, "no task with this id exists")
            return
        if claim.outcome is ClaimOutcome.FINISHED:
            if claim.own_outcome:
                await self._owed(claim)
            log.info("task already finished; acknowledging the redelivery")
            return
        if claim.outcome is ClaimOutcome.EXHAUSTED:
            await self._give_up(claim)
            return
        failpoint("worker.claimed")
        self.stats.in_flight += 1
        self._held[task_id] = claim
        try:
            self._announce(Status.PROCESSING, claim.task)
            await self._attempts(claim)
        except asyncio.CancelledError:
            # Shutting down before it finished: hand it back for the next owner of the partition.
            # If api_svc cannot take it back now, the lease runs out and the relay requeues it;
            # the shutdown goes on either way.
            try:
                await asyncio.shield(self._claims.hand_back(self._held.get(task_id) or claim))
            except Exception as exc:  # noqa: BLE001 - nothing may keep a cancelled task running
                log.warning("task not handed back; its lease will run out", extra={"error": str(exc)[:300]})
            raise
        finally:
            self.stats.in_flight -= 1
            self._held[task_id] = None

    async def _attempts(self, claim: Claim) -> None:
        while True:
            try:
                await self._run(claim)
                return
            except (*UNAVAILABLE, asyncio.CancelledError):
                raise  # infrastructure trouble or shutdown: the consumer decides
            except TaskFailedError as failure:
                if failure.retryable and claim.attempt_in_run < self._policy.max_attempts:
                    delay = self._policy.retry_backoff_seconds * 2 ** (claim.attempt_in_run - 1)
                    log.info("transient failure; retrying", extra={"code": failure.code, "in_seconds": delay})
                    await asyncio.sleep(delay)
                    claim = await self._claims.retrying(claim)
                    if claim.outcome is not ClaimOutcome.CLAIMED:
                        # Cancelled, deleted, or taken over and finished while this attempt
                        # failed (its worker was paused past its lease): nothing is recorded.
                        log.info("task ended elsewhere before its retry; nothing recorded")
                        return
                    assert claim.task is not None
                    self._held[claim.task["_id"]] = claim
                    self._announce(Status.PROCESSING, claim.task)
                    continue
                await self._fail(claim, failure)
                return
            except Exception:
                log.exception("unexpected error processing a task")
                await self._fail(
                    claim, TaskFailedError(FailureCode.INTERNAL, "processing failed unexpectedly; it has been logged")
                )
                return

    async def _run(self, claim: Claim) -> None:
        assert claim.task is not None
        task = claim.task
        started = time.perf_counter()
        queued_ms = (datetime.now(tz=UTC) - as_utc(task["created_at"])).total_seconds() * 1000
        with _tracer.start_as_current_span("fetch source"):
            data = await self._load_source(task)
        failpoint("worker.fetched")
        fetched = time.perf_counter()
        variants = _variants(task)
        watermarks = {
            op.upload_id: await self._watermark(op.upload_id)
            for variant in variants
            for op in variant.operations
            if isinstance(op, Watermark)
        }
        # pebble enforces the deadline by stopping the process that runs the job (and starts a
        # fresh one): an image that takes too long cannot keep a core busy after its task failed.
        job = self._pool.schedule(
            process_variants,
            args=(data, variants),
            kwargs={
                "auto_orient": not task.get("skip_auto_orient", False),
                "limits": self._policy.limits,
                "watermarks": watermarks,
                "fast_shrink_on_load": self._policy.fast_shrink_on_load,
            },
            timeout=self._policy.deadline_seconds,
        )
        self.stats.in_pool += 1
        try:
            # Cancelling this await (shutdown) cancels the job, which stops its process too.
            with _tracer.start_as_current_span("process image") as span:
                results: list[ProcessedImage] = await asyncio.wrap_future(job)
                # The engine runs in another process: its stages are this span's attributes.
                span.set_attributes({f"pixelflow.{name}": value for name, value in results[0].timings.items()})
        except ImageError as exc:
            raise TaskFailedError(exc.code, exc.message) from exc
        except TimeoutError as exc:
            raise TaskFailedError(
                FailureCode.DEADLINE_EXCEEDED, f"processing took longer than {self._policy.deadline_seconds:.0f} s"
            ) from exc
        except ProcessExpired as exc:
            # The process died under the image (killed, out of memory): not worth retrying.
            raise TaskFailedError(FailureCode.PROCESSING_CRASHED, "the image process crashed on this input") from exc
        finally:
            self.stats.in_pool -= 1
        observe_stages(fetched - started, results[0].timings, results[0].operation_ms)
        timings = {
            "queued_ms": round(queued_ms, 2),
            "fetch_ms": round((fetched - started) * 1000, 2),
            **{name: round(value, 2) for name, value in results[0].timings.items()},
            "total_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        failpoint("worker.processed")
        # A key per attempt: a worker that lost the task meanwhile cannot overwrite the result
        # of the one that won it (and deletes only its own below).
        stored: list[dict[str, Any]] = []
        storing = time.perf_counter()
        for variant, result in zip(variants, results, strict=True):
            key = result_key(task["_id"], claim.attempt, variant.name)
            with _tracer.start_as_current_span("store result"):
                blob = await self._blobs.put(key, result.data)
            stored.append(
                {
                    "blob_key": key,
                    "width": result.width,
                    "height": result.height,
                    "format": result.format.name,
                    "content_type": result.content_type,
                    "size_bytes": blob.size,
                    "sha256": blob.sha256,
                }
            )
        observe_store(time.perf_counter() - storing)
        failpoint("worker.stored")
        # The first output is the task's result; a task with variants lists each by name too.
        record = {**stored[0], "timings": timings}
        if task.get("variants"):
            record["variants"] = [
                {"name": variant.name, **described} for variant, described in zip(variants, stored, strict=True)
            ]
            # The blobs beyond the result's own, for the owner's stored-bytes quota (one $sum).
            record["variant_bytes"] = sum(described["size_bytes"] for described in stored[1:])
        written = await self._claims.complete(claim, record)
        if written is not None:
            self.stats.processed += 1
            observe_completed(task["created_at"], written["completed_at"])
            log.info("task completed", extra={"total_ms": timings["total_ms"], "attempt": claim.attempt})
            self._announce(Status.COMPLETED, {**task, **written})
        else:
            # Cancelled, deleted or taken over meanwhile: these results belong to nobody.
            for described in stored:
                await self._blobs.delete(described["blob_key"])
            log.info("task changed hands while processing; result discarded")

    async def _load_source(self, task: dict[str, Any]) -> bytes:
        source = task["source"]
        if "url" in source:
            try:
                return (await self._fetcher.fetch(source["url"])).data
            except SourceError as exc:
                raise TaskFailedError(exc.code, exc.message, retryable=exc.retryable) from exc
        try:
            return await self._blobs.get(source["upload"]["blob_key"])
        except (BlobNotFound, KeyError) as exc:
            raise TaskFailedError(FailureCode.SOURCE_NOT_FOUND, "the uploaded image is no longer stored") from exc

    async def _watermark(self, upload_id: str) -> bytes:
        """A watermark's bytes, from this worker's cache when it has them (an upload never
        changes under its id, so a cached copy is never stale)."""
        cached = self._watermarks.get(upload_id)
        if cached is not None:
            return cached
        try:
            data = await self._blobs.get(upload_key(upload_id))
        except BlobNotFound as exc:
            raise TaskFailedError(
                FailureCode.SOURCE_NOT_FOUND, f"the watermark upload {upload_id} is no longer stored"
            ) from exc
        self._watermarks.put(upload_id, data)
        return data

    async def _fail(self, claim: Claim, failure: TaskFailedError) -> None:
        assert claim.task is not None
        written = await self._claims.fail(claim, failure.code, failure.message, retryable=failure.retryable)
        if written is not None:
            self.stats.failed += 1
            log.info("task failed", extra={"code": failure.code, "attempt": claim.attempt})
            self._announce(Status.FAILED, {**claim.task, **written})
            if failure.retryable:  # retries exhausted: keep a record for operators
                await self.dead_letter(claim.task["_id"], failure.code, failure.message, attempts=claim.attempt)
        else:
            log.info("task ended elsewhere; its failure not recorded", extra={"code": failure.code})

    async def _owed(self, claim: Claim) -> None:
        """Our own finish was recorded but its answer lost (api_svc died, a deadline): what the
        answer would have led to, the announcement and any dead letter, happens now."""
        assert claim.task is not None
        task = claim.task
        status = Status(task["status"])
        log.info("our outcome was recorded before its answer was lost", extra={"status": status.value})
        self._announce(status, task)
        if status is Status.COMPLETED:  # the answer that would have observed it was lost
            observe_completed(task["created_at"], task["completed_at"])
        error = task.get("error") or {}
        if status is Status.FAILED and (error.get("retryable") or error.get("code") == FailureCode.ATTEMPTS_EXHAUSTED):
            await self.dead_letter(task["_id"], error["code"], error.get("message", ""), attempts=int(task["attempts"]))

    async def keep_leases(self, every_seconds: float) -> None:
        """Runs for the worker's life: renews the lease of every attempt in processing, so a
        task that waits for a pool process or runs long is not taken over while it is held."""
        while True:
            await asyncio.sleep(every_seconds)
            for task_id, claim in list(self._held.items()):
                if claim is None:
                    continue
                try:
                    if not await self._claims.renew(claim):
                        log.info("lease not renewed: the task has its outcome", extra={"task_id": task_id})
                except UNAVAILABLE as exc:
                    log.warning("lease not renewed; the store is unavailable", extra={"error": str(exc)[:300]})

    async def _give_up(self, claim: Claim) -> None:
        """Attempt max + 1 of a task whose attempts all died without an outcome (a source that
        kills its worker: out of memory, a crashing decoder): FAILED and dead-lettered, so it
        cannot take workers down in a loop."""
        assert claim.task is not None
        ran = claim.attempt_in_run - 1
        message = (
            f"the task was attempted {ran} times and every attempt ended without an outcome "
            "(its worker crashed or lost its lease); it is not tried again"
        )
        # The task's count is absolute (it goes on across replays); the message counts this run.
        attempts = claim.attempt - 1
        written = await self._claims.fail(
            claim, FailureCode.ATTEMPTS_EXHAUSTED, message, retryable=False, attempts=attempts
        )
        if written is not None:
            self.stats.failed += 1
            log.warning("attempts exhausted", extra={"attempts": attempts})
            self._announce(Status.FAILED, {**claim.task, **written})
            await self.dead_letter(claim.task["_id"], FailureCode.ATTEMPTS_EXHAUSTED, message, attempts=attempts)

    async def dead_letter(self, task_id: str | None, code: str, message: str, *, attempts: int = 0) -> None:
        """A record an operator can act on: why, how many attempts, which worker, when, and the
        message it came from (topic, partition, offset, key, payload, headers) to replay it."""
        delivery = delivery_var.get()
        record = {
            "task_id": task_id,
            "code": code,
            "message": message,
            "attempts": attempts,
            "worker_id": self._worker_id,
            "at": datetime.now(tz=UTC).isoformat(),
            "source": None if delivery is None else delivery.as_record(),
        }
        key = task_id or (delivery.key.decode(errors="replace") if delivery and delivery.key else "")
        await self._producer.publish(DEAD_LETTER_TOPIC, key, json.dumps(record).encode())
        log.warning("dead-lettered", extra={"code": code})

    def _announce(self, status: Status, task: dict[str, Any] | None) -> None:
        """The task as this worker just wrote it, for its watchers. Not awaited: a lost event
        costs a watcher a re-read (its safety interval), not a task."""
        assert task is not None
        self._producer.send(STATUS_TOPIC, task["_id"], StatusEvent(task["_id"], status, task).encode())


def _variants(task: dict[str, Any]) -> list[Variant]:
    """What the engine makes of a task: each variant's steps are the task's then its own; a task
    without variants is one unnamed output."""
    operations = parse_operations(operations_from_document(task.get("operations", [])))
    stored = variants_from_document(task.get("variants", []))
    if not stored:
        return [Variant("", operations, parse_output(output_from_document(task.get("output", {}))))]
    return [
        Variant(
            variant.name,
            [*operations, *parse_operations(variant.operations, f"variants[{index}].operations")],
            parse_output(variant.output),
        )
        for index, variant in enumerate(stored)
    ]
