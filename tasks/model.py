"""The task document in MongoDB, owned by api_svc (which writes it, through tasks.lifecycle
after its creation) and handed to worker_svc by TaskLifecycleService; its translation to the
proto Task, and to BSON for what carries whole documents (status events, the lifecycle API).

MongoDB is the source of truth; Kafka task messages carry only the task id.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import bson
from bson.codec_options import CodecOptions
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from pixelflow.v1 import task_pb2

from tasks import failures

TASKS = "tasks"
IDEMPOTENCY = "idempotency_keys"
OUTBOX = "task_outbox"
UPLOADS = "uploads"

# Times come back as UTC-aware datetimes, as they do from the store's client.
BSON_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True, tzinfo=UTC)


def to_bson(document: dict[str, Any]) -> bytes:
    return bson.encode(document)


def from_bson(data: bytes) -> dict[str, Any]:
    """The document; bson.errors.BSONError for bytes that are not one."""
    return dict(bson.decode(data, codec_options=BSON_CODEC))


class Status(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    def to_proto(self) -> task_pb2.TaskStatus.ValueType:
        return task_pb2.TaskStatus.Value(f"TASK_STATUS_{self.value}")

    @classmethod
    def from_proto(cls, value: task_pb2.TaskStatus.ValueType) -> Status:
        return cls(task_pb2.TaskStatus.Name(value).removeprefix("TASK_STATUS_"))


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


def utcnow() -> datetime:
    # MongoDB keeps milliseconds; truncating here keeps what we return equal to what we stored.
    now = datetime.now(tz=UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime) -> datetime:
    """PyMongo returns naive datetimes in UTC unless the client is tz_aware."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(as_utc(value))
    return stamp


def message_to_document(message: Any) -> dict[str, Any]:
    """Proto → plain dict for storage (proto field names, enums as names)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def operations_from_document(stored: list[dict[str, Any]]) -> list[task_pb2.Operation]:
    return [json_format.ParseDict(item, task_pb2.Operation()) for item in stored]


def output_from_document(stored: dict[str, Any]) -> task_pb2.OutputOptions:
    return json_format.ParseDict(stored, task_pb2.OutputOptions())


def result_url(public_base_url: str, task_id: str) -> str:
    return f"{public_base_url.rstrip('/')}/v1/tasks/{task_id}/result"


def variant_url(public_base_url: str, task_id: str, name: str) -> str:
    return f"{public_base_url.rstrip('/')}/v1/tasks/{task_id}/variants/{name}"


def variants_from_document(stored: list[dict[str, Any]]) -> list[task_pb2.Variant]:
    return [json_format.ParseDict(item, task_pb2.Variant()) for item in stored]


def result_blob_keys(result: dict[str, Any] | None) -> set[str]:
    """Every blob a recorded result names: its own and, for a task with variants, each one's
    (the first variant's is the result's own)."""
    if not result:
        return set()
    keys = {variant["blob_key"] for variant in result.get("variants", [])}
    return keys | ({result["blob_key"]} if result.get("blob_key") else set())


def upload_to_proto(doc: dict[str, Any]) -> task_pb2.Upload:
    upload = task_pb2.Upload(
        id=doc["_id"],
        filename=doc["filename"],
        content_type=doc["content_type"],
        size_bytes=doc["size_bytes"],
        sha256=doc["sha256"],
    )
    upload.created_at.FromDatetime(as_utc(doc["created_at"]))
    return upload


def task_to_proto(doc: dict[str, Any], public_base_url: str) -> task_pb2.Task:
    status = Status(doc["status"])
    task = task_pb2.Task(
        id=doc["_id"],
        owner_id=doc["owner_id"],
        status=status.to_proto(),
        operations=operations_from_document(doc.get("operations", [])),
        output=output_from_document(doc.get("output", {})),
        attempts=int(doc.get("attempts", 0)),
        worker_id=doc.get("worker_id") or "",
        idempotency_key=doc.get("idempotency_key") or "",
        skip_auto_orient=bool(doc.get("skip_auto_orient", False)),
        variants=variants_from_document(doc.get("variants", [])),
        preset=doc.get("preset") or "",
        callback_url=doc.get("callback_url") or "",
    )
    source = doc["source"]
    if "url" in source:
        task.source_url = source["url"]
    else:
        upload = source["upload"]
        task.upload.CopyFrom(
            task_pb2.UploadInfo(
                filename=upload.get("filename", ""),
                content_type=upload.get("content_type", ""),
                size_bytes=int(upload["size_bytes"]),
                upload_id=upload.get("upload_id", ""),
                sha256=upload.get("sha256", ""),
            )
        )
    for field in ("created_at", "started_at", "completed_at", "updated_at"):
        stamp = _timestamp(doc.get(field))
        if stamp is not None:
            getattr(task, field).CopyFrom(stamp)
    if status is Status.FAILED and doc.get("error"):
        error = doc["error"]
        task.error.CopyFrom(
            task_pb2.TaskError(
                code=error["code"],
                message=error["message"],
                retryable=bool(error.get("retryable")),
                failure=failures.to_proto(error["code"]),
            )
        )
    if status is Status.COMPLETED and doc.get("result"):
        result = doc["result"]
        task.result.CopyFrom(_result_to_proto(result))
        task.result.timings.CopyFrom(task_pb2.Timings(**result.get("timings", {})))
        task.processed_url = result_url(public_base_url, doc["_id"])
        for variant in result.get("variants", []):
            task.variant_results.add(
                name=variant["name"],
                result=_result_to_proto(variant),
                processed_url=variant_url(public_base_url, doc["_id"], variant["name"]),
            )
    return task


def _result_to_proto(result: dict[str, Any]) -> task_pb2.TaskResult:
    return task_pb2.TaskResult(
        width=result["width"],
        height=result["height"],
        format=task_pb2.ImageFormat.Value(f"IMAGE_FORMAT_{result['format']}"),
        content_type=result["content_type"],
        size_bytes=result["size_bytes"],
        sha256=result["sha256"],
    )
