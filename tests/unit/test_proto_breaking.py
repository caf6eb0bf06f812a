"""`make lint`'s buf breaking check fails a change that breaks the contract, and passes none.

The check compares the descriptor set compiled from proto/ with the same set compiled from the
main branch's proto/ (scripts/gen_proto.py --against main). Here the "main" side is the working
tree's own set and the candidate a copy of proto/ with one edit.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
CURRENT = ROOT / "gen" / "pixelflow.protoset"
TASK_PROTO = Path("pixelflow/v1/task.proto")


def buf() -> str:
    path = os.environ.get("PIXELFLOW_BUF", "")
    assert path and Path(path).is_file(), "PIXELFLOW_BUF must name the buf binary (make test-unit sets it)"
    return path


def breaking(tmp_path: Path, edit: tuple[str, str] | None) -> subprocess.CompletedProcess[str]:
    protos = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", protos)
    if edit is not None:
        text = (protos / TASK_PROTO).read_text()
        assert re.search(edit[0], text), f"{edit[0]!r} is not in {TASK_PROTO}"
        (protos / TASK_PROTO).write_text(re.sub(edit[0], edit[1], text, count=1))
    candidate = tmp_path / "candidate.protoset"
    subprocess.run(
        [sys.executable, "scripts/gen_proto.py", "--proto-dir", str(protos), "--out", str(candidate)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return subprocess.run(
        [buf(), "breaking", f"{candidate}#format=binpb", "--against", f"{CURRENT}#format=binpb", "--path", "pixelflow"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_an_unchanged_contract_passes(tmp_path: Path) -> None:
    result = breaking(tmp_path, None)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        ((r"uint32 quality = 2", "uint64 quality = 2"), 'changed type from "uint32" to "uint64"'),
        ((r"bool lossless = 3;", "reserved 3;"), 'Previously present field "3" with name "lossless"'),
        ((r"IMAGE_FORMAT_TIFF = 6;", "IMAGE_FORMAT_TIF = 6;"), "IMAGE_FORMAT_TIFF"),
    ],
)
def test_a_breaking_change_fails(tmp_path: Path, edit: tuple[str, str], complaint: str) -> None:
    result = breaking(tmp_path, edit)
    assert result.returncode != 0
    assert complaint in result.stdout, result.stdout + result.stderr
