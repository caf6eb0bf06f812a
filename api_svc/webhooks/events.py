"""What a webhook event says: its type and its JSON body, made once when the task's end is
turned into a delivery and sent byte for byte the same on every retry.

{"type": "task.completed", "timestamp": "<when the task ended, RFC 3339>",
 "data": {"task": <the Task as the REST API renders it: GET /v1/tasks/{id}>}}
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format

from tasks.model import Status, task_to_proto

EVENT_TYPES = {
    Status.COMPLETED: "task.completed",
    Status.FAILED: "task.failed",
    Status.CANCELLED: "task.cancelled",
}


def event_type(status: Status) -> str:
    return EVENT_TYPES[status]


def event_body(task: dict[str, Any], public_base_url: str) -> bytes:
    """The body of the event announcing `task`'s end (the document with its terminal fields)."""
    rendered = task_to_proto(task, public_base_url)
    # As the gateway's transcoder renders it (camelCase names, enums by name, defaults printed),
    # without the deliveries: the event is one of them.
    shown = json_format.MessageToDict(rendered, always_print_fields_with_no_presence=True)
    shown.pop("webhookDeliveries", None)
    body = {
        "type": event_type(Status(task["status"])),
        "timestamp": rendered.completed_at.ToJsonString(),
        "data": {"task": shown},
    }
    return json.dumps(body, separators=(",", ":")).encode()
