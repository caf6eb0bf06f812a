"""The pure parts of the SDK and the CLI: operation specs, input expansion, result names, the
saved session's file, request building and error details."""

from __future__ import annotations

import asyncio
import fcntl
import stat
from pathlib import Path, PurePosixPath

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from pixelflow.v1 import task_pb2

from pixelflow_client import CredentialStore, PixelFlowError, SavedSession, task_request
from pixelflow_client.cli.inputs import InputError, OutputNames, expand
from pixelflow_client.operations import SpecError, parse, parse_variant

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("resize=800", task_pb2.Operation(resize=task_pb2.Resize(width=800))),
        ("resize=x600,upscale", task_pb2.Operation(resize=task_pb2.Resize(height=600, allow_upscale=True))),
        (
            "resize=800x600,fit=cover,gravity=smart",
            task_pb2.Operation(
                resize=task_pb2.Resize(
                    width=800, height=600, fit=task_pb2.RESIZE_FIT_COVER, gravity=task_pb2.GRAVITY_SMART
                )
            ),
        ),
        ("crop=300x200+10+20", task_pb2.Operation(crop=task_pb2.Crop(width=300, height=200, left=10, top=20))),
        (
            "crop=30x20,gravity=north",
            task_pb2.Operation(crop=task_pb2.Crop(width=30, height=20, gravity=task_pb2.GRAVITY_NORTH)),
        ),
        ("rotate=-12.5", task_pb2.Operation(rotate=task_pb2.Rotate(angle=-12.5))),
        ("flip=h", task_pb2.Operation(flip=task_pb2.Flip(direction=task_pb2.FLIP_DIRECTION_HORIZONTAL))),
        ("grayscale", task_pb2.Operation(grayscale=task_pb2.Grayscale())),
        ("sharpen=1.5,amount=150", task_pb2.Operation(sharpen=task_pb2.Sharpen(sigma=1.5, amount=150))),
        ("adjust,brightness=1.2", task_pb2.Operation(adjust=task_pb2.Adjust(brightness=1.2))),
        (
            "watermark=" + "a" * 32 + ",position=north-west,opacity=0.5",
            task_pb2.Operation(
                watermark=task_pb2.Watermark(upload_id="a" * 32, position=task_pb2.GRAVITY_NORTH_WEST, opacity=0.5)
            ),
        ),
    ],
)
def test_operation_specs(spec: str, expected: task_pb2.Operation) -> None:
    assert parse(spec) == expected


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("zoom=2", "unknown operation 'zoom'"),
        ("resize=big", "give WIDTH, WIDTHxHEIGHT or xHEIGHT"),
        ("resize=10,fit=squash", "'squash' is not one of contain, cover, fill, inside, outside"),
        ("blur=soft", "blur=soft: expected a number"),
        ("blur=2,radius=3", "unknown option(s) radius"),
        ("resize=10,upscale=maybe", "upscale is a flag"),
        ("crop=10", "give WIDTHxHEIGHT"),
    ],
)
def test_bad_specs_say_what_was_expected(spec: str, said: str) -> None:
    with pytest.raises(SpecError, match=None) as refused:
        parse(spec)
    assert said in str(refused.value)


def test_inputs_walk_folders_expand_globs_and_dedupe(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("a.jpg", "b.PNG", "sub/a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = expand([str(tmp_path), str(tmp_path / "*.PNG"), "https://example.com/p/cat.webp?s=1"])
    assert [(item.stem.as_posix(), item.url) for item in found] == [
        ("a", ""),
        ("b", ""),
        ("sub/a", ""),
        ("cat", "https://example.com/p/cat.webp?s=1"),
    ]
    with pytest.raises(InputError, match="no such file or folder"):
        expand([str(tmp_path / "missing.jpg")])
    with pytest.raises(InputError, match="matches no file"):
        expand([str(tmp_path / "*.gif")])


def test_result_names_never_collide() -> None:
    names = OutputNames(Path("out"))
    webp = task_pb2.IMAGE_FORMAT_WEBP
    assert names.claim(PurePosixPath("a"), webp) == Path("out/a.webp")
    assert names.claim(PurePosixPath("a"), webp) == Path("out/a-2.webp")
    assert names.claim(PurePosixPath("a"), task_pb2.IMAGE_FORMAT_JPEG) == Path("out/a.jpg")
    assert names.claim(PurePosixPath("trip/a"), webp) == Path("out/trip/a.webp")


def test_the_saved_session_is_private_and_written_whole(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "pixelflow")
    assert store.load() is None
    session = SavedSession(server="h:1", email="e@example.com", refresh_token="r", access_token="a")
    store.save(session)
    assert store.load() == session
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert [path.name for path in store.directory.iterdir()] == ["credentials.json"]  # no temporary left
    store.path.write_text("{not json")
    assert store.load() is None  # a damaged file is no session
    store.delete()
    assert store.load() is None


def test_the_session_lock_excludes_another_process(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)

    def try_lock() -> bool:
        # Another open file description, as another process has: flock refuses it while held.
        with (tmp_path / "credentials.lock").open("a") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(other, fcntl.LOCK_UN)
            return True

    async def scenario() -> tuple[bool, bool]:
        async with store.locked():
            held = try_lock()
        return held, try_lock()

    assert asyncio.run(scenario()) == (False, True)


def test_task_request_takes_one_source() -> None:
    request = task_request(upload_id="0" * 32, operations=[parse("resize=800")])
    assert request.WhichOneof("source") == "upload_id" and request.operations[0].resize.width == 800
    with pytest.raises(ValueError, match="exactly one source"):
        task_request(source_url="https://example.com/a.jpg", upload_id="0" * 32)


class _Refused(grpc.aio.AioRpcError):
    def __init__(self, status: status_pb2.Status) -> None:
        trailers = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
        super().__init__(grpc.StatusCode(next(c for c in grpc.StatusCode if c.value[0] == status.code)),
                         grpc.aio.Metadata(), trailers, details=status.message, debug_error_string="")  # fmt: skip


def test_errors_carry_field_violations_and_retry_info() -> None:
    bad_request, retry = any_pb2.Any(), any_pb2.Any()
    bad_request.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="output.quality", description="≤ 100", reason="r")
            ]
        )
    )
    retry.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=7)))
    status = status_pb2.Status(code=8, message="over the limit", details=[bad_request, retry])
    error = PixelFlowError.from_rpc(_Refused(status))
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.message == "over the limit"
    assert [(v.field, v.description, v.rule) for v in error.violations] == [("output.quality", "≤ 100", "r")]
    assert error.retry_after == 7


def test_variant_specs() -> None:
    assert parse_variant("large=1600x1200,fit=cover,format=jpeg,quality=85") == task_pb2.Variant(
        name="large",
        operations=[parse("resize=1600x1200,fit=cover")],
        output=task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_JPEG, quality=85),
    )
    assert parse_variant("page=800,format=avif,lossless").output.lossless
    for spec, said in [("thumb", "write NAME=SIZE"), ("t=200,format=heic", "'heic' is not one of")]:
        with pytest.raises(SpecError) as refused:
            parse_variant(spec)
        assert said in str(refused.value)
