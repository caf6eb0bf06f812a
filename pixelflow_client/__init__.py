"""PixelFlow's Python SDK: `Client` (blocking) and `AsyncClient` (asyncio) over the generated
gRPC stubs, with the session `pixelflow login` saves, token refresh, retries on UNAVAILABLE and
streamed uploads and downloads. The `pixelflow` command (pixelflow_client.cli) is built on it.

    from pixelflow_client import Client, operations

    with Client.from_saved() as client:
        upload = client.upload(Path("photo.jpg"))
        task = client.create_task(upload_id=upload.id, operations=[operations.parse("resize=800")])
        client.download(client.wait_for(task.id).id, Path("photo-800.jpg"))
"""

from pixelflow_client.aio import AsyncClient, is_terminal, task_request
from pixelflow_client.credentials import CredentialStore, SavedSession
from pixelflow_client.errors import FieldViolation, NotLoggedIn, PixelFlowError, QuotaViolation
from pixelflow_client.sync import Client

__all__ = [
    "AsyncClient",
    "Client",
    "CredentialStore",
    "FieldViolation",
    "NotLoggedIn",
    "PixelFlowError",
    "QuotaViolation",
    "SavedSession",
    "is_terminal",
    "task_request",
]
