"""The exactly-once protocol on the real task store (FerretDB): a committed outcome is settled
by whoever finds it unwritten, every attempt counts whoever ends it, and a worker that lost
its lease writes nothing (tasks.lifecycle)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from api_svc.repository import TaskRepository
from infra.stack import Stack
from tasks.lifecycle import TASK_LOCKS, ClaimOutcome, TaskClaims, take_attempt, take_final, terminal_write
from tasks.model import TASKS, Status, utcnow

pytestmark = pytest.mark.integration

MAX_ATTEMPTS = 3
EXPIRED_AT_ONCE = timedelta(0)  # a lease that has run out by the next claim: the worker "died"


@contextlib.asynccontextmanager
async def _database(stack: Stack) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.infra.mongo_uri, tz_aware=True)
    try:
        yield mongo["outcomes_test"]
    finally:
        await mongo.close()


def _claims(database: AsyncDatabase[dict[str, Any]], worker: str, lease: timedelta) -> TaskClaims:
    return TaskClaims(database[TASKS], database[TASK_LOCKS], worker, lease, max_attempts=MAX_ATTEMPTS)


async def _new_task(database: AsyncDatabase[dict[str, Any]], **fields: Any) -> str:
    task_id = uuid.uuid4().hex
    document = {"_id": task_id, "status": Status.PENDING.value, "attempts": 0, "created_at": utcnow(), **fields}
    await database[TASKS].insert_one(document)
    return task_id


async def test_a_claim_settles_an_outcome_committed_but_never_written(stack: Stack) -> None:
    """The worker took the final lock and died before writing the task: the next claimer
    writes the committed outcome instead of running the task again."""
    async with _database(stack) as database:
        task_id = await _new_task(database, status=Status.PROCESSING.value, attempts=1, lease_until=utcnow())
        result = {"blob_key": "tasks/xx/result-1", "width": 8}
        committed = terminal_write(Status.COMPLETED.value, {"result": result, "attempts": 1, "worker_id": "dead"})
        assert await take_final(database[TASK_LOCKS], task_id, "dead#1", committed)
        claim = await _claims(database, "next", timedelta(seconds=30)).claim(task_id)
        assert claim.outcome is ClaimOutcome.FINISHED
        stored = await database[TASKS].find_one({"_id": task_id})
        assert stored is not None
        assert (stored["status"], stored["result"], stored["attempts"], stored["worker_id"]) == (
            "COMPLETED",
            result,
            1,
            "dead",
        )
        assert stored["lease_until"] is None


async def test_a_claim_write_landing_on_a_finished_task_is_undone(stack: Stack) -> None:
    """A claimer that read the task before it finished writes PROCESSING over the outcome
    (FerretDB's updates are not atomic); its own check of the final lock writes it back."""
    async with _database(stack) as database:
        task_id = await _new_task(database)  # the finisher's document write was lost: still PENDING
        committed = terminal_write(Status.FAILED.value, {"error": {"code": "CORRUPT_IMAGE", "message": "m"}})
        assert await take_final(database[TASK_LOCKS], task_id, "finisher#1", committed)
        claim = await _claims(database, "late", timedelta(seconds=30)).claim(task_id)
        assert claim.outcome is ClaimOutcome.FINISHED
        stored = await database[TASKS].find_one({"_id": task_id})
        assert stored is not None and stored["status"] == "FAILED" and stored["error"]["code"] == "CORRUPT_IMAGE"


async def test_every_attempt_counts_whoever_ends_it(stack: Stack) -> None:
    """Workers that die holding the task (no retry path runs) still use up its attempts: the
    claim after the last one ends it instead of running it again."""
    async with _database(stack) as database:
        task_id = await _new_task(database)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            claim = await _claims(database, f"doomed-{attempt}", EXPIRED_AT_ONCE).claim(task_id)
            assert claim.outcome is ClaimOutcome.CLAIMED and claim.attempt == attempt  # ... and it dies
        last = _claims(database, "last", timedelta(seconds=30))
        exhausted = await last.claim(task_id)
        assert exhausted.outcome is ClaimOutcome.EXHAUSTED
        written = await last.fail(exhausted, "ATTEMPTS_EXHAUSTED", "m", retryable=False, attempts=MAX_ATTEMPTS)
        assert written is not None
        stored = await database[TASKS].find_one({"_id": task_id})
        assert stored is not None and stored["status"] == "FAILED" and stored["attempts"] == MAX_ATTEMPTS
        assert (await last.claim(task_id)).outcome is ClaimOutcome.FINISHED


async def test_a_worker_that_lost_its_lease_writes_nothing(stack: Stack) -> None:
    """Paused past its lease (SIGSTOP … SIGCONT), the first worker finds a later attempt's lock
    and writes neither an outcome nor over the task the second worker now holds."""
    async with _database(stack) as database:
        task_id = await _new_task(database)
        paused = _claims(database, "paused", EXPIRED_AT_ONCE)
        first = await paused.claim(task_id)
        second = await _claims(database, "fresh", timedelta(seconds=30)).claim(task_id)
        assert (first.attempt, second.attempt) == (1, 2)
        assert await paused.complete(first, {"from": "paused"}) is None
        assert await paused.fail(first, "INTERNAL", "m", retryable=False) is None
        stored = await database[TASKS].find_one({"_id": task_id})
        assert stored is not None and stored["status"] == "PROCESSING" and stored["worker_id"] == "fresh"
        assert await database[TASK_LOCKS].find_one({"_id": f"{task_id}:final"}) is None


async def test_a_renewed_lease_keeps_other_claimers_out(stack: Stack) -> None:
    """A task held past its first lease (a long image, a queue before the pool) is not taken
    over while its worker renews it; without the renewal the next claimer would take attempt 2."""
    async with _database(stack) as database:
        task_id = await _new_task(database)
        held = await _claims(database, "holder", EXPIRED_AT_ONCE).claim(task_id)  # would run out now
        assert await _claims(database, "holder", timedelta(seconds=30)).renew(held)
        assert (await _claims(database, "other", timedelta(seconds=30)).claim(task_id)).outcome is ClaimOutcome.LEASED
        stored = await database[TASKS].find_one({"_id": task_id})
        assert stored is not None and stored["lease_until"] > utcnow() + timedelta(seconds=20)


async def test_renewal_stops_once_the_task_has_its_outcome(stack: Stack) -> None:
    async with _database(stack) as database:
        task_id = await _new_task(database)
        claims = _claims(database, "holder", timedelta(seconds=30))
        held = await claims.claim(task_id)
        committed = terminal_write(Status.CANCELLED.value, {})
        assert await take_final(database[TASK_LOCKS], task_id, "api", committed)  # the document write was lost
        assert not await claims.renew(held)
        stored = await database[TASKS].find_one({"_id": task_id})
        assert stored is not None and stored["status"] == "CANCELLED"


async def test_a_reader_sees_the_committed_outcome_even_if_a_late_claim_overwrote_it(stack: Stack) -> None:
    """The outcome was settled (a watcher was told COMPLETED), then a claim that had read the
    task before wrote PROCESSING over it: GetTask and GetTaskResult still answer COMPLETED
    (api_svc's read settles it again) instead of "PROCESSING" to a user who saw it finish."""
    async with _database(stack) as database:
        task_id = await _new_task(database, owner_id="reader", status=Status.PROCESSING.value, attempts=2)
        result = {"blob_key": "tasks/xx/result-1", "content_type": "image/png"}
        committed = terminal_write(Status.COMPLETED.value, {"result": result, "attempts": 1, "worker_id": "w"})
        assert await take_final(database[TASK_LOCKS], task_id, "w#1", committed)
        seen = await TaskRepository(database).get("reader", task_id)
        assert seen is not None and (seen["status"], seen["result"], seen["attempts"]) == ("COMPLETED", result, 1)
        stored = await database[TASKS].find_one({"_id": task_id})
        assert stored is not None and stored["status"] == "COMPLETED"
        assert await TaskRepository(database).get("someone else", task_id) is None


async def test_deleting_a_task_whose_document_lags_its_outcome_names_the_committed_result(stack: Stack) -> None:
    """A lost update left the document PROCESSING after its outcome was committed (a lease
    renewal read it before the finish and wrote it back after): DeleteTask still learns the
    result's blob from the final lock, so the blob goes with the task instead of waiting for
    the orphan sweep."""
    async with _database(stack) as database:
        task_id = await _new_task(database, owner_id="deleter", status=Status.PROCESSING.value, attempts=1)
        result = {"blob_key": f"tasks/xx/{task_id}/result-1", "content_type": "image/png"}
        committed = terminal_write(Status.COMPLETED.value, {"result": result, "attempts": 1, "worker_id": "w"})
        assert await take_final(database[TASK_LOCKS], task_id, "w#1", committed)
        deleted = await TaskRepository(database).delete("deleter", task_id)
        assert deleted is not None and deleted["result"] == result
        assert await database[TASK_LOCKS].count_documents({"task_id": task_id}) == 0
        assert await database[TASKS].find_one({"_id": task_id}) is None


async def test_a_finish_asked_again_by_its_owner_is_the_same_outcome(stack: Stack) -> None:
    """FinishTask's answer was lost (or its deadline passed while the insert was on its way):
    the worker asks again and is told its outcome stands, so it keeps its result blob."""
    async with _database(stack) as database:
        task_id = await _new_task(database)
        claims = _claims(database, "owner", timedelta(seconds=30))
        claim = await claims.claim(task_id)
        assert claim.outcome is ClaimOutcome.CLAIMED
        first = await claims.complete(claim, {"blob_key": "k1"})
        again = await claims.complete(claim, {"blob_key": "k1-redone"})
        assert first is not None and again is not None and again["result"] == first["result"] == {"blob_key": "k1"}
        assert await _claims(database, "other", timedelta(seconds=30)).complete(claim, {"blob_key": "x"}) is None


async def test_a_resumed_claim_takes_the_attempt_its_cut_short_retry_locked(stack: Stack) -> None:
    """A retry took attempt 2's lock and was cut short before the task document said so: the
    worker's next claim resumes attempt 2 (resuming 1 would be fenced by its own lock forever)."""
    async with _database(stack) as database:
        task_id = await _new_task(database)
        claims = _claims(database, "owner", timedelta(seconds=30))
        claim = await claims.claim(task_id)
        assert claim.attempt == 1
        assert await take_attempt(database[TASK_LOCKS], task_id, 2, "owner", utcnow() + timedelta(seconds=30))
        resumed = await claims.claim(task_id)
        assert resumed.outcome is ClaimOutcome.CLAIMED and resumed.attempt == 2
        assert await claims.complete(resumed, {"blob_key": "k2"}) is not None


async def test_a_worker_whose_finish_answer_was_lost_learns_its_outcome_is_its_own(stack: Stack) -> None:
    """The worker's finish was committed but its answer lost (api_svc died): its retried claim
    says FINISHED *by it*, with the outcome, so it still announces it and writes the dead letter
    it owes. Another worker, or a later redelivery of a settled task, is told only FINISHED."""
    async with _database(stack) as database:
        task_id = await _new_task(database)
        mine = _claims(database, "owner", timedelta(seconds=30))
        claim = await mine.claim(task_id)
        error = {"code": "SOURCE_UNAVAILABLE", "message": "502", "retryable": True}
        committed = terminal_write(Status.FAILED.value, {"error": error, "attempts": 1, "worker_id": "owner"})
        assert await take_final(database[TASK_LOCKS], task_id, "owner#1", committed)  # the answer never came
        again = await mine.claim(task_id)
        assert again.outcome is ClaimOutcome.FINISHED and again.own_outcome
        assert again.task is not None and again.task["status"] == "FAILED" and again.task["error"] == error
        settled = await mine.claim(task_id)  # the document shows it now: an ordinary redelivery
        assert settled.outcome is ClaimOutcome.FINISHED and not settled.own_outcome
        assert claim.attempt == 1
