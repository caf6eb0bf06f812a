"""PresetService in domain terms: named pipelines (operations + output) per user. No gRPC here.

A preset is checked once, when it is saved, as CreateTask checks a pipeline: the proto's rules
(by the interceptor, common.validation) and what only the service knows (a watermark is one of
the caller's uploads: Uploads.check_operations). CreateTask copies a preset's pipeline into the
task it creates (`expand`), so a preset changed or deleted later leaves earlier tasks as they
were (docs/decisions/0016-presets.md).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Sequence

from pixelflow.v1 import preset_pb2, task_pb2

from api_svc.ids import new_id
from api_svc.preset_repository import Document, PresetRepository
from api_svc.uploads import Uploads
from common.errors import InvalidArgument, NotFound, ResourceExhausted
from common.validation import violations
from tasks.model import message_to_document, utcnow

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


class PresetService:
    def __init__(self, repository: PresetRepository, uploads: Uploads, max_per_user: int) -> None:
        self._repository = repository
        self._uploads = uploads
        self._max_per_user = max_per_user

    async def create(
        self,
        owner_id: str,
        name: str,
        operations: Sequence[task_pb2.Operation],
        output: task_pb2.OutputOptions,
    ) -> Document:
        # The name's and the pipeline's rules are the proto's, checked before this runs.
        if await self._repository.count(owner_id) >= self._max_per_user:
            raise self._full()
        await self._uploads.check_operations(owner_id, operations)
        now = utcnow()
        document: Document = {
            "_id": new_id(),
            "owner_id": owner_id,
            "name": name,
            **_pipeline(operations, output),
            "created_at": now,
            "updated_at": now,
        }
        await self._repository.insert(document)  # ALREADY_EXISTS for a name in use
        # Counted again after the write: two creates racing past the first count both see the
        # other here, and the one over the cap takes its own preset back. The cap holds
        # without a counter document (FerretDB v1 updates are read-modify-write, no $inc).
        if await self._repository.count(owner_id) > self._max_per_user:
            await self._repository.delete_by_id(document["_id"])
            raise self._full()
        log.info("preset created", extra={"owner_id": owner_id, "preset": name})
        return document

    def _full(self) -> ResourceExhausted:
        return ResourceExhausted(
            f"you have the maximum of {self._max_per_user} presets; delete one you no longer use first"
        )

    async def get(self, owner_id: str, name: str) -> Document:
        document = await self._repository.get(owner_id, name)
        if document is None:  # someone else's preset of that name is as absent as none
            raise NotFound(f"no preset named {name!r}")
        return document

    async def page(self, owner_id: str, page_size: int, page_token: str) -> tuple[list[Document], str]:
        # page_size ≥ 0: the proto's rule.
        limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        documents = await self._repository.page(owner_id, limit=limit + 1, after=_decode_page_token(page_token))
        if len(documents) <= limit:
            return documents, ""
        documents = documents[:limit]
        return documents, _encode_page_token(documents[-1]["name"])

    async def update(
        self,
        owner_id: str,
        name: str,
        operations: Sequence[task_pb2.Operation],
        output: task_pb2.OutputOptions,
    ) -> Document:
        await self._uploads.check_operations(owner_id, operations)
        updated = await self._repository.replace_pipeline(
            owner_id, name, {**_pipeline(operations, output), "updated_at": utcnow()}
        )
        if updated is None:
            raise NotFound(f"no preset named {name!r}")
        log.info("preset updated", extra={"owner_id": owner_id, "preset": name})
        return updated

    async def delete(self, owner_id: str, name: str) -> None:
        if not await self._repository.delete(owner_id, name):
            raise NotFound(f"no preset named {name!r}")
        log.info("preset deleted", extra={"owner_id": owner_id, "preset": name})

    async def expand(self, owner_id: str, name: str) -> tuple[list[Document], Document]:
        """The preset's operations and output as a task stores them (copies: the task keeps
        them whatever happens to the preset later). NOT_FOUND naming the `preset` field."""
        document = await self._repository.get(owner_id, name)
        if document is None:
            raise NotFound(f"no preset named {name!r} (CreateTaskRequest.preset); create it first or check the name")
        return list(document.get("operations", [])), dict(document.get("output", {}))


def _pipeline(operations: Sequence[task_pb2.Operation], output: task_pb2.OutputOptions) -> Document:
    return {"operations": [message_to_document(op) for op in operations], "output": message_to_document(output)}


def _encode_page_token(last_name: str) -> str:
    return base64.urlsafe_b64encode(last_name.encode()).decode().rstrip("=")


def _decode_page_token(token: str) -> str | None:
    """The last name of the previous page; INVALID_ARGUMENT for a token this service did not issue."""
    if not token:
        return None
    try:
        name = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        name = ""
    # A name the preset rule accepts is one this service could have issued.
    if not name or violations(preset_pb2.GetPresetRequest(name=name)):
        raise InvalidArgument("page_token is not one this service issued", field="page_token", rule="page_token.known")
    return name
