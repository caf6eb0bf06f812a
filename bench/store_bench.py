"""The unit cost of one task-store command: latency, and CPU in the client, FerretDB and its
PostgreSQL, for PyMongo's async and sync clients side by side.

Run with `python -m bench.store_bench`. It starts PostgreSQL and FerretDB of its own and runs
rounds of (insert, find by _id, update) one at a time, the commands a task's life is made of;
CPU is read from /proc (bench.cpu) and the client's with time.process_time.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import typer
from pymongo import AsyncMongoClient, MongoClient
from rich.console import Console
from rich.table import Table

from bench.cpu import process_cpu
from infra.infrastructure import FERRETDB_DATABASE, InfraPorts, Infrastructure, make_temp_root

COMMANDS_PER_ROUND = 3


def _document(index: int) -> dict[str, Any]:
    return {"_id": uuid.uuid4().hex, "status": "PENDING", "attempts": 0, "n": index}


async def _async_rounds(uri: str, rounds: int) -> list[float]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    tasks = client["store_bench"]["tasks"]
    latencies = []
    try:
        for index in range(rounds):
            document = _document(index)
            started = time.perf_counter()
            await tasks.insert_one(document)
            await tasks.find_one({"_id": document["_id"]})
            await tasks.update_one({"_id": document["_id"]}, {"$set": {"status": "PROCESSING"}})
            latencies.append((time.perf_counter() - started) / COMMANDS_PER_ROUND)
    finally:
        await client.close()
    return latencies


def _sync_rounds(uri: str, rounds: int) -> list[float]:
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    tasks = client["store_bench"]["tasks"]
    latencies = []
    try:
        for index in range(rounds):
            document = _document(index)
            started = time.perf_counter()
            tasks.insert_one(document)
            tasks.find_one({"_id": document["_id"]})
            tasks.update_one({"_id": document["_id"]}, {"$set": {"status": "PROCESSING"}})
            latencies.append((time.perf_counter() - started) / COMMANDS_PER_ROUND)
    finally:
        client.close()
    return latencies


def main(
    rounds: Annotated[int, typer.Option(min=1, help="Rounds of insert, find, update per measurement.")] = 400,
    repeats: Annotated[int, typer.Option(min=1)] = 3,
) -> None:
    infra = Infrastructure(make_temp_root("pixelflow-store-bench-"), InfraPorts.free())
    infra.postgres.start()
    infra.postgres.create_database(FERRETDB_DATABASE)
    infra.ferretdb.start()
    clients: dict[str, Callable[[], list[float]]] = {
        "PyMongo async": lambda: asyncio.run(_async_rounds(infra.mongo_uri, rounds)),
        "PyMongo sync": lambda: _sync_rounds(infra.mongo_uri, rounds),
    }
    rows: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in clients}
    try:
        for _ in range(repeats):
            for name, run in clients.items():
                servers = {"ferretdb": infra.ferretdb.process, "postgres": infra.postgres.process}
                before = {key: process_cpu(process) for key, process in servers.items()}
                client_before = time.process_time()
                latencies = run()
                commands = rounds * COMMANDS_PER_ROUND
                client_cpu = (time.process_time() - client_before) / commands
                after = {key: process_cpu(process) for key, process in servers.items()}
                ferretdb, postgres = ((after[key] - before[key]) / commands for key in ("ferretdb", "postgres"))
                rows[name].append((statistics.median(latencies), client_cpu, ferretdb, postgres))
    finally:
        infra.ferretdb.stop()
        infra.postgres.stop()
    table = Table(title=f"One store command (insert, find by _id, update; medians of {repeats} × {rounds} rounds)")
    for column in ("client", "latency", "client CPU", "FerretDB CPU", "PostgreSQL CPU", "CPU in all"):
        table.add_column(column, justify="left" if column == "client" else "right")
    for name, measured in rows.items():
        latency, client, ferretdb, postgres = (
            statistics.median(values) * 1000 for values in zip(*measured, strict=True)
        )
        cells = (latency, client, ferretdb, postgres, client + ferretdb + postgres)
        table.add_row(name, *(f"{value:.2f} ms" for value in cells))
    Console(width=120).print(table)


if __name__ == "__main__":
    typer.run(main)
