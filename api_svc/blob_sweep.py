"""The orphan sweep: removes blobs that nothing references any more.

Blobs are written before the records that reference them (an upload before its record, a result
before the task's finish), so a crash between the two writes leaves a blob nobody points to; so
does a worker that lost its task after storing a result. The sweep deletes, once they are older
than a grace period (longer than any write in flight, i.e. than a worker's lease):

- an upload blob whose upload record does not exist;
- a task blob whose task does not exist;
- a task blob the task does not reference once the task has ended (results of lost attempts).
  While a task runs, every blob of it stays: its current attempt may be about to record one.

Deletes are idempotent, so several api_svc replicas sweeping at once do no harm.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from api_svc.repository import Document, TaskRepository
from common.blobstore import BlobStore, StoredKey
from common.blobstore.keys import TASKS, UPLOADS, owner
from tasks.model import TERMINAL, Status, result_blob_keys, utcnow

log = logging.getLogger(__name__)
_BATCH = 500


@dataclass
class SweepReport:
    examined: int = 0
    deleted: int = 0
    incomplete_puts: int = 0


async def sweep(repository: TaskRepository, blobs: BlobStore, grace: timedelta) -> SweepReport:
    report = SweepReport(incomplete_puts=await blobs.purge_incomplete(grace))
    cutoff = utcnow() - grace
    for prefix in (UPLOADS, TASKS):
        batch: list[StoredKey] = []
        async for stored in blobs.list(prefix):
            if stored.modified < cutoff:
                batch.append(stored)
            if len(batch) >= _BATCH:
                await _sweep_batch(repository, blobs, batch, report)
                batch = []
        await _sweep_batch(repository, blobs, batch, report)
    if report.deleted or report.incomplete_puts:
        log.info("blob sweep removed orphans", extra=report.__dict__)
    return report


async def _sweep_batch(
    repository: TaskRepository, blobs: BlobStore, batch: list[StoredKey], report: SweepReport
) -> None:
    if not batch:
        return
    report.examined += len(batch)
    owners = {stored.key: owner(stored.key) for stored in batch}
    upload_ids = [o.id for o in owners.values() if o is not None and o.kind == "upload"]
    task_ids = [o.id for o in owners.values() if o is not None and o.kind == "task"]
    uploads = await repository.existing_uploads(upload_ids) if upload_ids else set()
    tasks = await repository.blob_references(task_ids) if task_ids else {}
    for key, found in owners.items():
        if found is None:
            continue  # not a key this layout writes: not ours to judge
        orphan = found.id not in uploads if found.kind == "upload" else _orphaned_task_blob(key, tasks.get(found.id))
        if orphan:
            await blobs.delete(key)
            report.deleted += 1


def _orphaned_task_blob(key: str, task: Document | None) -> bool:
    if task is None:
        return True
    if Status(task["status"]) not in TERMINAL:
        return False
    referenced = {task.get("source", {}).get("upload", {}).get("blob_key"), *result_blob_keys(task.get("result"))}
    return key not in referenced


async def sweep_forever(repository: TaskRepository, blobs: BlobStore, interval: float, grace: timedelta) -> None:
    """Runs for the service's life."""
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep(repository, blobs, grace)
        except Exception:
            log.exception("blob sweep failed; trying again next round")
