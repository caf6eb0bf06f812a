"""Where the message being handled came from, for the dead-letter record: the consumer sets it
before handing the message on, and the processor reads it when it dead-letters."""

from __future__ import annotations

import base64
import contextvars
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Delivery:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)

    @classmethod
    def of(cls, message: Any) -> Delivery:
        return cls(
            message.topic(),
            message.partition(),
            message.offset(),
            message.key(),
            message.value(),
            list(message.headers() or []),
        )

    def as_record(self) -> dict[str, Any]:
        """Everything needed to understand the message and publish it again, as JSON."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": None if self.key is None else self.key.decode(errors="replace"),
            "payload_base64": None if self.value is None else base64.b64encode(self.value).decode(),
            "headers": {name: (value or b"").decode(errors="replace") for name, value in self.headers},
        }


delivery_var: contextvars.ContextVar[Delivery | None] = contextvars.ContextVar("delivery", default=None)
