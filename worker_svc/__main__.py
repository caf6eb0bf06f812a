"""Runs worker_svc. Consuming and processing tasks is the next milestone: until then it serves
WorkerStatusService (every call UNIMPLEMENTED), health and reflection."""

from __future__ import annotations

import asyncio

from pixelflow.v1 import worker_pb2, worker_pb2_grpc

from common.logging import configure_logging
from common.server import serve
from worker_svc.config import WorkerSettings


async def run(settings: WorkerSettings) -> None:
    await serve(
        settings=settings,
        port=settings.worker_status_port,
        service_names=[worker_pb2.DESCRIPTOR.services_by_name["WorkerStatusService"].full_name],
        register=lambda server: worker_pb2_grpc.add_WorkerStatusServiceServicer_to_server(
            worker_pb2_grpc.WorkerStatusServiceServicer(),  # type: ignore[abstract]  # the base answers UNIMPLEMENTED
            server,
        ),
    )


def main() -> None:
    settings = WorkerSettings()
    configure_logging("worker_svc", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
