"""The webhook dispatcher: one loop per api_svc replica (decision 0018).

Each round it
1. turns committed outcomes into deliveries: every final lock naming a webhook event that has no
   delivery yet (tasks.lifecycle commits the event's id with the outcome, so an end is never
   lost between the commit and this step, whoever committed it and whenever the process died)
   becomes one delivery document — `_id` the event's id, the body made once — and stops being
   named as due;
2. sends the deliveries that are due, each attempt under an insert-once lock with a lease
   (api_svc.webhooks.repository), so of several replicas one sends it; records the attempt
   (time, HTTP status or error, duration) and what it decided: delivered, retried after a
   backoff (api_svc.webhooks.backoff) or given up.

Rounds run every `poll_seconds`, at once when this replica records an outcome (`wake`), and
when a retry this replica scheduled falls due, so backoff gaps are kept to the millisecond
rather than rounded up to the poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from datetime import datetime, timedelta
from typing import Any

from api_svc.webhooks.backoff import RetryPolicy
from api_svc.webhooks.events import event_body, event_type
from api_svc.webhooks.repository import DELIVERED, FAILED, PENDING, WebhookRepository
from api_svc.webhooks.sender import AttemptResult, Verdict, WebhookSender
from api_svc.webhooks.signing import signed_headers
from tasks.lifecycle import terminal_fields
from tasks.model import Status, as_utc, utcnow

log = logging.getLogger(__name__)

Document = dict[str, Any]
_BATCH = 100
# A lease outlives the attempt it covers by this much (the attempt itself is bounded by the
# sender's timeout), so a live sender is never taken over.
_LEASE_MARGIN_SECONDS = 5.0


class Dispatcher:
    def __init__(
        self,
        repository: WebhookRepository,
        sender: WebhookSender,
        policy: RetryPolicy,
        *,
        public_base_url: str,
        replica_id: str,
        timeout_seconds: float,
        poll_seconds: float,
        concurrency: int = 16,
    ) -> None:
        self._repository = repository
        self._sender = sender
        self._policy = policy
        self._base_url = public_base_url
        self._replica_id = replica_id
        self._lease = timedelta(seconds=timeout_seconds + _LEASE_MARGIN_SECONDS)
        self._poll_seconds = poll_seconds
        self._concurrency = concurrency
        self._wakeup = asyncio.Event()
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._retries: list[datetime] = []  # when retries scheduled here fall due

    def wake(self) -> None:
        """An outcome was just committed here: look for its event now, not at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        """For the service's life."""
        try:
            while True:
                self._wakeup.clear()
                try:
                    await self.round()
                except Exception:
                    log.exception("webhook round failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._sleep_seconds()):
                        await self._wakeup.wait()
        finally:
            for job in self._sending.values():
                job.cancel()

    def _sleep_seconds(self) -> float:
        now = utcnow()
        self._retries = [at for at in self._retries if at > now]
        if not self._retries:
            return self._poll_seconds
        return min(self._poll_seconds, (min(self._retries) - now).total_seconds())

    async def round(self) -> None:
        for lock in await self._repository.ends_due(_BATCH):
            await self._hand_over(lock)
        for delivery in await self._repository.due(utcnow(), _BATCH):
            if delivery["_id"] in self._sending or len(self._sending) >= self._concurrency:
                continue
            event_id = str(delivery["_id"])
            job = asyncio.create_task(self._attempt(delivery))
            self._sending[event_id] = job
            job.add_done_callback(functools.partial(self._sent, event_id))

    def _sent(self, event_id: str, _job: asyncio.Task[None]) -> None:
        self._sending.pop(event_id, None)

    async def _hand_over(self, lock: Document) -> None:
        """The delivery of the event a final lock names (`webhook_id`), made from the task and
        its committed outcome; the same body goes out on every attempt."""
        task = await self._repository.task(lock["task_id"])
        if task is not None and task.get("callback_url"):
            ended = {**task, **terminal_fields(lock)}
            status = Status(ended["status"])
            now = utcnow()
            created = await self._repository.create(
                {
                    "_id": lock["webhook_id"],
                    "task_id": task["_id"],
                    "owner_id": task["owner_id"],
                    "url": task["callback_url"],
                    "type": event_type(status),
                    "body": event_body(ended, self._base_url),
                    "ended_at": as_utc(ended.get("completed_at") or lock["at"]),
                    "created_at": now,
                    "state": PENDING,
                    "next_attempt_at": now,
                    "attempts": [],
                }
            )
            if created:
                log.info("webhook event created", extra={"task_id": task["_id"], "event_id": lock["webhook_id"]})
        # A task deleted before its event was made announces nothing.
        await self._repository.handed_over(lock["_id"])

    async def _attempt(self, delivery: Document) -> None:
        try:
            number = await self._repository.take_attempt(delivery, self._replica_id, utcnow() + self._lease)
            if number is None:
                return  # another replica is sending it
            await self._send(delivery, number)
        except Exception:
            log.exception("webhook attempt failed to run", extra={"task_id": delivery["task_id"]})

    async def _send(self, delivery: Document, number: int) -> None:
        settings = await self._repository.settings(delivery["owner_id"]) or {}
        secret = settings.get("secret")
        at = utcnow()
        if not secret:  # cannot happen through the API (a callback needs a secret); said if it does
            result = AttemptResult(Verdict.GIVE_UP, 0, "the owner has no webhook secret to sign with", 0)
        else:
            # Signed at each attempt with the secret in force then: a rotation takes effect at once.
            headers = signed_headers(secret, delivery["_id"], delivery["body"], at)
            result = await self._sender.send(delivery["url"], headers, delivery["body"])
        failures = len(delivery.get("attempts", [])) + 1  # every recorded attempt of a PENDING one failed
        fields = self._decide(delivery, result, failures)
        attempt = {
            "n": number,
            "at": at,
            "http_status": result.http_status,
            "error": result.error,
            "duration_ms": result.duration_ms,
        }
        await self._repository.record(delivery["_id"], attempt, fields)
        extra = {
            "task_id": delivery["task_id"],
            "event_id": delivery["_id"],
            "attempt": number,
            "http_status": result.http_status,
            "error": result.error,
        }
        if fields["state"] == PENDING:
            log.info("webhook attempt failed; retrying later", extra=extra)
            self._retries.append(fields["next_attempt_at"])
            self.wake()  # sleep again, until the earliest retry
            return
        await self._repository.release(delivery["_id"])
        if fields["state"] == DELIVERED:
            log.info("webhook delivered", extra=extra)
        else:
            log.warning("webhook given up", extra={**extra, "outcome": fields["outcome"]})

    def _decide(self, delivery: Document, result: AttemptResult, failures: int) -> Document:
        if result.verdict is Verdict.DELIVERED:
            outcome = f"delivered: the receiver answered {result.http_status}"
            return {"state": DELIVERED, "next_attempt_at": None, "outcome": outcome}
        if result.verdict is Verdict.GIVE_UP:
            return {"state": FAILED, "next_attempt_at": None, "outcome": f"given up: {result.error}"}
        retry_at = self._policy.next_attempt(as_utc(delivery["ended_at"]), utcnow(), failures)
        if retry_at is None:
            outcome = (
                f"given up after {failures} attempts: no 2xx answer within "
                f"{self._policy.retry_seconds:g} s of the task's end (last: {result.error})"
            )
            return {"state": FAILED, "next_attempt_at": None, "outcome": outcome}
        return {"next_attempt_at": retry_at, "state": PENDING}
