"""Runs api_svc. The task pipeline itself is the next milestone: until then TaskService is
registered (so reflection and the gateway know it) and every call answers UNIMPLEMENTED."""

from __future__ import annotations

import asyncio

from pixelflow.v1 import task_pb2, task_pb2_grpc

from api_svc.config import ApiSettings
from common.logging import configure_logging
from common.server import serve


async def run(settings: ApiSettings) -> None:
    await serve(
        settings=settings,
        port=settings.api_port,
        service_names=[task_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name],
        register=lambda server: task_pb2_grpc.add_TaskServiceServicer_to_server(
            task_pb2_grpc.TaskServiceServicer(),  # type: ignore[abstract]  # the base answers UNIMPLEMENTED
            server,
        ),
    )


def main() -> None:
    settings = ApiSettings()
    configure_logging("api_svc", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
