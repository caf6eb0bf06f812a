"""The server's side of the shared table of valid and invalid requests
(tests/contract/create_task_requests.json; the browser checks the same table in
ui/src/tasks/validation.test.ts): protovalidate, with the rules compiled into the stubs,
reports exactly the listed (field, rule id) pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from pixelflow.v1 import admin_pb2, task_pb2

from common.validation import violations

pytestmark = pytest.mark.unit
TABLE = json.loads((Path(__file__).resolve().parents[1] / "contract" / "create_task_requests.json").read_text())


@pytest.mark.parametrize("case", TABLE["cases"], ids=[case["name"] for case in TABLE["cases"]])
def test_the_server_reports_what_the_table_lists(case: dict[str, Any]) -> None:
    request = json_format.ParseDict(case["request"], task_pb2.CreateTaskRequest())
    found = sorted((violation.field, violation.rule) for violation in violations(request))
    assert found == sorted(tuple(pair) for pair in case["violations"])


def test_the_table_covers_every_rule_id_of_the_operations() -> None:
    """Each CEL rule of the task contract (presets included) appears in the table at least once."""
    listed = {rule for case in TABLE["cases"] for _, rule in case["violations"]}
    cel = {
        "resize.size_required",
        "resize.gravity_needs_cover",
        "crop.box_needs_left_and_top",
        "crop.box_or_gravity",
        "flip.direction",
        "watermark.position_fixed",
        "output.lossless_needs_format",
        "output.lossless_format",
        "string.id",
        "string.colour",
        "string.printable",
        "double.factor",
        "double.share",
        "create_task.preset_or_pipeline",
        "string.preset_name",
    }
    assert cel <= listed, cel - listed


def test_the_admin_replay_names_a_real_position() -> None:
    found = violations(admin_pb2.ReplayDeadLetterRequest(partition=-1, offset=-2))
    assert [(v.field, v.rule) for v in found] == [("partition", "int32.gte"), ("offset", "int64.gte")]
