"""FerretDB's SQLite backend (PIXELFLOW_FERRETDB_BACKEND=sqlite) still carries what the pipeline
relies on from its task store: the unique-_id claim locks under racing workers."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from infra.ferretdb import FerretDBServer
from infra.infrastructure import make_temp_root
from infra.process import free_port
from tasks.lifecycle import TASK_LOCKS, ClaimOutcome, TaskClaims
from tasks.model import TASKS, Status, utcnow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sqlite_ferretdb() -> Iterator[FerretDBServer]:
    root = make_temp_root("pixelflow-ferretdb-sqlite-")
    server = FerretDBServer(root / "ferretdb", free_port(), backend="sqlite")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def database(sqlite_ferretdb: FerretDBServer) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(sqlite_ferretdb.uri, tz_aware=True, maxPoolSize=20)
    try:
        yield client[f"db_{uuid.uuid4().hex[:8]}"]
    finally:
        await client.close()


async def test_racing_claims_have_one_winner(database: Any) -> None:
    for _ in range(5):
        task_id = uuid.uuid4().hex
        await database[TASKS].insert_one(
            {"_id": task_id, "status": Status.PENDING.value, "attempts": 0, "created_at": utcnow()}
        )
        claimers = [
            TaskClaims(database[TASKS], database[TASK_LOCKS], f"w{i}", timedelta(seconds=30), max_attempts=3)
            for i in range(8)
        ]
        claims = await asyncio.gather(*(c.claim(task_id) for c in claimers))
        assert [c.outcome for c in claims].count(ClaimOutcome.CLAIMED) == 1
