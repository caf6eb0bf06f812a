"""Pure logic that the stack tests only reach through the whole mesh, checked on its own:
the worker's offset tracking, the task list's page tokens, the worker registry, and the
fingerprint that makes two CreateTask requests "the same" for idempotency."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pixelflow.v1 import task_pb2

from api_svc.service import _decode_page_token, _encode_page_token, idempotency_fingerprint
from common.errors import InvalidArgument
from worker_svc.consumer import OffsetTracker
from worker_svc.status import WorkerRegistry

pytestmark = pytest.mark.unit
P = ("image-tasks", 0)


# ---- offsets: a partition is committed only up to its oldest message still in work ----------


def test_an_offset_is_committed_only_when_every_earlier_one_is_done() -> None:
    tracker = OffsetTracker()
    for offset in (5, 6, 7):
        tracker.start(P, offset)
    assert tracker.finish(P, 7) == 5  # 5 and 6 are still in work: commit nothing past 5
    assert tracker.finish(P, 5) == 6
    assert tracker.finish(P, 6) == 8  # all done: the next offset to read


def test_partitions_are_tracked_apart_and_forgotten_on_revocation() -> None:
    tracker = OffsetTracker()
    other = ("image-tasks", 1)
    tracker.start(P, 1)
    tracker.start(other, 10)
    assert tracker.finish(other, 10) == 11
    tracker.forget([P])
    tracker.start(P, 3)  # assigned again from offset 3: nothing of before counts
    assert tracker.finish(P, 3) == 4


# ---- page tokens --------------------------------------------------------------------------------


def test_a_page_token_round_trips() -> None:
    created_at = datetime(2026, 12, 2, 19, 0, 1, 123456, tzinfo=UTC)
    task_id = "0123456789abcdef0123456789abcdef"
    token = _encode_page_token(created_at, task_id)
    assert "=" not in token  # URL-safe, unpadded: fits a query string as it is
    assert _decode_page_token(token) == (created_at, task_id)
    assert _decode_page_token("") is None


@pytest.mark.parametrize(
    "token",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(json.dumps({"c": "yesterday", "i": "0" * 32}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"c": "2026-12-02T00:00:00+00:00", "i": "../etc"}).encode()).decode(),
    ],
)
def test_a_forged_page_token_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _decode_page_token(token)
    assert caught.value.violations[0][0] in {"page_token", "task_id"}


# ---- the worker registry ------------------------------------------------------------------------


class _Record:
    def __init__(self, value: bytes) -> None:
        self._value = value

    def value(self) -> bytes:
        return self._value


def _beat(worker: str, sent: datetime) -> _Record:
    started = sent - timedelta(minutes=5)
    return _Record(json.dumps({"id": worker, "sent_at": sent.isoformat(), "started_at": started.isoformat()}).encode())


def test_the_registry_keeps_each_workers_last_beat_and_drops_the_silent() -> None:
    registry = WorkerRegistry(timedelta(seconds=20))
    now = datetime.now(tz=UTC)
    registry.on_record(_beat("b", now - timedelta(seconds=1)))
    registry.on_record(_beat("a", now - timedelta(seconds=40)))  # silent for longer than 20 s
    registry.on_record(_beat("b", now))
    registry.on_record(_Record(b"not json"))  # a stray record is ignored, not fatal
    registry.on_record(_Record(json.dumps({"id": "c"}).encode()))
    live = registry.live()
    assert [beat["id"] for beat in live] == ["b"]
    assert live[0]["sent_at"] == datetime.fromisoformat(now.isoformat())


# ---- idempotency fingerprints -------------------------------------------------------------------


def _fingerprint(request: task_pb2.CreateTaskRequest, **overrides: Any) -> str:
    operations = overrides.get("operations", [{"resize": {"width": 100}}])
    return idempotency_fingerprint(request, overrides.get("sha"), operations, overrides.get("output", {}))


def test_the_fingerprint_is_everything_but_the_key() -> None:
    url = task_pb2.CreateTaskRequest(source_url="https://x.test/a.png", idempotency_key="k1")
    same_but_key = task_pb2.CreateTaskRequest(source_url="https://x.test/a.png", idempotency_key="k2")
    assert _fingerprint(url) == _fingerprint(same_but_key)
    assert _fingerprint(url) != _fingerprint(task_pb2.CreateTaskRequest(source_url="https://x.test/b.png"))
    assert _fingerprint(url) != _fingerprint(url, operations=[{"resize": {"width": 101}}])
    assert _fingerprint(url) != _fingerprint(url, output={"format": 3})
    turned = task_pb2.CreateTaskRequest(source_url="https://x.test/a.png", skip_auto_orient=True)
    assert _fingerprint(url) != _fingerprint(turned)


def test_an_upload_id_and_an_inline_image_are_told_apart_by_what_they_name() -> None:
    by_id = task_pb2.CreateTaskRequest(upload_id="0" * 32)
    other_id = task_pb2.CreateTaskRequest(upload_id="1" * 32)
    inline = task_pb2.CreateTaskRequest(upload=task_pb2.InlineUpload(content=b"x"))
    assert _fingerprint(by_id) != _fingerprint(other_id)
    assert _fingerprint(inline, sha="aa") != _fingerprint(inline, sha="bb")  # the bytes' hash counts
    assert _fingerprint(inline, sha="aa") == _fingerprint(inline, sha="aa")


# ---- failure codes: one list, the proto's ---------------------------------------------------


def test_every_failure_code_is_the_protos_and_maps_to_its_value() -> None:
    from tasks.failures import FailureCode, to_proto  # noqa: PLC0415 - its import is the check

    names = {name.removeprefix("FAILURE_CODE_") for name in task_pb2.FailureCode.keys()} - {"UNSPECIFIED"}  # noqa: SIM118
    assert names == {code.value for code in FailureCode}
    for code in FailureCode:
        assert task_pb2.FailureCode.Name(to_proto(code)) == f"FAILURE_CODE_{code.value}"
    assert to_proto("SOMETHING_A_NEWER_WORKER_WROTE") == task_pb2.FAILURE_CODE_UNSPECIFIED
