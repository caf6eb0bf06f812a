"""The requests' validation rules, as proto/ declares them (buf.validate annotations).

Every request a service receives is checked here before its handler runs (common.interceptors),
by protovalidate against the rules compiled into the generated messages: the same rules the
browser checks before it sends (ui/src/tasks/validation.ts) and buf lint compiles. A broken rule
is INVALID_ARGUMENT with one `google.rpc.BadRequest` field violation per rule broken, each
naming the field (`operations[0].resize.width`), the rule (`reason`: `uint32.lte`, or the id of
a CEL rule) and what to do (`description`).

What a rule in the proto cannot say stays with the code that knows it, saying why: a source
URL's address (tasks.source_urls), whether an upload is the caller's (api_svc.uploads), a crop box
against the image's size (the worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import protovalidate
from google.protobuf.message import Message

from common.errors import InvalidArgument


@dataclass(frozen=True)
class Violation:
    field: str  # the path, as `operations[0].resize.width`; the message's own path for a message rule
    rule: str  # protovalidate's rule id: `uint32.lte`, `required`, or a CEL rule's id
    message: str


@cache
def _validator() -> protovalidate.Validator:
    return protovalidate.Validator()


def violations(message: Message, at: str = "") -> list[Violation]:
    """Every rule `message` breaks (none when it is valid); `at` is its path in a request."""
    try:
        _validator().validate(message)
    except protovalidate.ValidationError as error:
        return [_violation(found.proto, at) for found in error.violations]
    return []


def check(message: Message, at: str = "") -> None:
    """INVALID_ARGUMENT naming every rule `message` breaks; nothing when it is valid."""
    found = violations(message, at)
    if found:
        raise InvalidArgument.of(
            [(violation.field, violation.message, violation.rule) for violation in found],
        )


def _violation(proto: protovalidate.ViolationPb, at: str) -> Violation:
    path = [at] if at else []
    for element in proto.field.elements if proto.field is not None else ():
        step = element.field_name
        subscript = getattr(element, "subscript", None)
        if subscript is not None:
            key = subscript.value
            step += f"[{key}]" if subscript.field == "index" else f"[{key!r}]"
        path.append(step)
    return Violation(field=".".join(path), rule=proto.rule_id, message=proto.message)
