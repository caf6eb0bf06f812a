"""Ids of tasks and uploads: 32 lower-case hex digits (uuid4().hex), checked before any lookup."""

from __future__ import annotations

import re
import uuid

from common.errors import InvalidArgument

_ID = re.compile(r"^[0-9a-f]{32}$")


def is_id(value: str) -> bool:
    return _ID.match(value) is not None


def new_id() -> str:
    return uuid.uuid4().hex


def checked_id(value: str, field: str) -> str:
    """`value` if it is an id; INVALID_ARGUMENT naming `field` (task_id, upload_id) otherwise."""
    if not is_id(value):
        kind = field.removesuffix("_id")
        article = "an" if kind[:1] in "aeiou" else "a"
        raise InvalidArgument(
            f"{field} must be the 32 hexadecimal characters of {article} {kind} id", field=field, rule=f"{field}.id"
        )
    return value
