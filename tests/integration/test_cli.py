"""The `pixelflow` command against the real stack, as a person or a script runs it: the console
script installed in the venv, a config directory of its own per test, the gateway's address."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from PIL import Image
from pixelflow.v1 import auth_pb2, auth_pb2_grpc
from standardwebhooks import Webhook

from infra.stack import Stack
from pixelflow_client import CredentialStore
from tests.conftest import TEST_PASSWORD, unique_email, wait_until
from tests.images import ImageServer, image_bytes
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.integration

PIXELFLOW = Path(sys.executable).with_name("pixelflow")


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    with server.running():
        yield server


def _environment(stack: Stack, config: Path, **extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PIXELFLOW_")}
    return {
        **environment,
        "PIXELFLOW_SERVER": stack.gateway_address,
        "PIXELFLOW_CONFIG_DIR": str(config),
        "PIXELFLOW_PASSWORD": TEST_PASSWORD,
        "COLUMNS": "200",
        **extra,
    }


def pixelflow(
    stack: Stack, config: Path, *arguments: str, cwd: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PIXELFLOW), *arguments],
        env=_environment(stack, config, **extra),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


@pytest.fixture
def signed_in(stack: Stack, tmp_path: Path) -> tuple[Path, str]:
    """A new account logged in with the CLI: (its config directory, its email)."""
    config, email = tmp_path / "config", unique_email("cli")
    registered = pixelflow(stack, config, "register", "--email", email)
    assert registered.returncode == 0, registered.stderr
    logged_in = pixelflow(stack, config, "login", "--email", email)
    assert logged_in.returncode == 0, logged_in.stderr
    assert f"logged in as {email}" in logged_in.stdout
    return config, email


def _photos(folder: Path) -> None:
    """Two top-level images and two in a subfolder, one name repeated, and a non-image skipped."""
    (folder / "trip").mkdir(parents=True)
    Image.new("RGB", (640, 480), (200, 30, 30)).save(folder / "a.jpg")
    Image.new("RGB", (400, 400), (30, 200, 30)).save(folder / "b.png")
    Image.new("RGB", (500, 250), (30, 30, 200)).save(folder / "trip" / "a.jpg")
    Image.new("RGB", (300, 600), (90, 90, 90)).save(folder / "trip" / "c.webp")
    (folder / "notes.txt").write_text("not an image, and not taken from a folder")


def test_the_console_script_is_installed_and_documents_itself(stack: Stack, tmp_path: Path) -> None:
    assert PIXELFLOW.exists(), "make deps installs the `pixelflow` console script into the venv"
    shown = pixelflow(stack, tmp_path, "--help")
    assert shown.returncode == 0
    for command in ("login", "submit", "tasks", "watch", "download", "cancel", "delete", "workers", "dead-letters"):
        assert command in shown.stdout


def test_login_keeps_the_session_for_the_user_alone_and_logout_ends_it(
    stack: Stack, signed_in: tuple[Path, str], auth: auth_pb2_grpc.AuthServiceStub
) -> None:
    config, email = signed_in
    credentials = config / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    saved = json.loads(credentials.read_text())
    assert saved["email"] == email and saved["server"] == stack.gateway_address and saved["refresh_token"]

    whoami = pixelflow(stack, config, "whoami", "--json")
    assert whoami.returncode == 0, whoami.stderr
    assert _lines(whoami.stdout)[0]["email"] == email

    assert pixelflow(stack, config, "logout").returncode == 0
    assert not credentials.exists()
    with pytest.raises(grpc.RpcError) as refused:
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=saved["refresh_token"]))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # ended on the server too
    again = pixelflow(stack, config, "whoami")
    assert again.returncode == 1 and "not logged in" in again.stderr


def test_a_wrong_password_is_refused_and_nothing_is_saved(stack: Stack, tmp_path: Path) -> None:
    config, email = tmp_path / "config", unique_email("cli")
    assert pixelflow(stack, config, "register", "--email", email).returncode == 0
    refused = pixelflow(stack, config, "login", "--email", email, PIXELFLOW_PASSWORD="not the password")
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr
    assert not (config / "credentials.json").exists()


def test_an_expired_access_token_is_refreshed_silently_and_saved(stack: Stack, signed_in: tuple[Path, str]) -> None:
    config, _ = signed_in
    store = CredentialStore(config)
    before = store.load()
    assert before is not None
    # As if the access token had run out since the last command.
    credentials = config / "credentials.json"
    credentials.write_text(json.dumps({**json.loads(credentials.read_text()), "access_expires_at": 0}))
    whoami = pixelflow(stack, config, "whoami", "--json")
    assert whoami.returncode == 0, whoami.stderr
    after = store.load()
    assert after is not None
    assert after.access_token != before.access_token and after.refresh_token != before.refresh_token
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


def test_submit_a_folder_and_a_glob_downloads_every_result_with_its_name(
    stack: Stack, signed_in: tuple[Path, str], tmp_path: Path
) -> None:
    config, _ = signed_in
    photos, out = tmp_path / "photos", tmp_path / "out"
    _photos(photos)
    submitted = pixelflow(
        stack, config, "submit", str(photos), str(photos / "*.png"),
        "--resize", "100", "--format", "webp", "--quality", "80", "--out", str(out), "--json",
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    records = {Path(record["source"]).relative_to(photos).as_posix(): record for record in _lines(submitted.stdout)}
    # The glob's b.png is the folder's b.png: submitted once.
    assert sorted(records) == ["a.jpg", "b.png", "trip/a.jpg", "trip/c.webp"]
    assert all(record["status"] == "COMPLETED" and record["task_id"] for record in records.values())
    written = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    assert written == ["a.webp", "b.webp", "trip/a.webp", "trip/c.webp"]  # the folder's layout is kept
    for relative in written:
        with Image.open(out / relative) as result:
            assert result.format == "WEBP" and result.width == 100
    assert "4 of 4 submitted · done 4 · failed 0" in submitted.stderr


def test_submit_without_wait_prints_the_tasks_and_urls_work(
    stack: Stack, signed_in: tuple[Path, str], images: ImageServer
) -> None:
    config, _ = signed_in
    images.serve_bytes("/cli.png", image_bytes(80, 60), "image/png")
    submitted = pixelflow(stack, config, "submit", images.url("/cli.png"), "--op", "rotate=90", "--op", "grayscale")
    assert submitted.returncode == 0, submitted.stderr
    task_id, source = submitted.stdout.split()
    assert source == images.url("/cli.png") and len(task_id) == 32

    watched = pixelflow(stack, config, "watch", task_id, "--json")
    assert watched.returncode == 0, watched.stderr
    final = _lines(watched.stdout)[-1]
    assert final["status"] == "TASK_STATUS_COMPLETED"
    assert (final["result"]["width"], final["result"]["height"]) == (60, 80)
    assert [list(step) for step in final["operations"]] == [["rotate"], ["grayscale"]]

    listed = pixelflow(stack, config, "tasks", "--status", "completed", "--json")
    assert [task["id"] for task in _lines(listed.stdout)] == [task_id]
    fetched = pixelflow(stack, config, "get", task_id)
    assert _lines(fetched.stdout)[0]["id"] == task_id


def test_download_cancel_and_delete(stack: Stack, signed_in: tuple[Path, str], tmp_path: Path) -> None:
    config, _ = signed_in
    source = tmp_path / "one.png"
    source.write_bytes(image_bytes(90, 30))
    submitted = pixelflow(stack, config, "submit", str(source), "--wait", "--json")
    assert submitted.returncode == 0, submitted.stderr
    task_id = _lines(submitted.stdout)[0]["task_id"]

    downloaded = pixelflow(stack, config, "download", task_id, cwd=tmp_path)
    assert downloaded.returncode == 0, downloaded.stderr
    with Image.open(tmp_path / f"{task_id}.png") as result:
        assert result.size == (90, 30)

    finished = pixelflow(stack, config, "cancel", task_id)
    assert finished.returncode == 1 and "FAILED_PRECONDITION" in finished.stderr
    assert pixelflow(stack, config, "delete", task_id).returncode == 0
    gone = pixelflow(stack, config, "get", task_id)
    assert gone.returncode == 1 and "NOT_FOUND" in gone.stderr


def test_a_bad_image_fails_its_item_and_the_exit_code_but_not_the_rest(
    stack: Stack, signed_in: tuple[Path, str], tmp_path: Path
) -> None:
    config, _ = signed_in
    good, bad = tmp_path / "good.png", tmp_path / "bad.jpg"
    good.write_bytes(image_bytes(40, 40))
    bad.write_text("not an image")
    submitted = pixelflow(stack, config, "submit", str(good), str(bad), "--wait", "--json")
    assert submitted.returncode == 1
    records = {Path(record["source"]).name: record for record in _lines(submitted.stdout)}
    assert records["good.png"]["status"] == "COMPLETED"
    assert records["bad.jpg"]["stage"] == "failed" and "INVALID_ARGUMENT" in records["bad.jpg"]["error"]


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--quality", "150"], "output.quality: must be less than or equal to 100"),
        (["--op", "resize=0x0"], "operations[0].resize: set width, height or both"),
        (["--op", "zoom=2"], "unknown operation 'zoom'"),
        (["--format", "bmp"], "'bmp' is not one of"),
        (["--lossless", "--format", "jpeg"], "JPEG and GIF have no lossless mode"),
    ],
)
def test_a_bad_command_line_stops_before_any_upload(
    stack: Stack, signed_in: tuple[Path, str], tmp_path: Path, arguments: list[str], said: str
) -> None:
    config, _ = signed_in
    source = tmp_path / "one.png"
    source.write_bytes(image_bytes())
    refused = pixelflow(stack, config, "submit", str(source), *arguments)
    assert refused.returncode == 2 and said in " ".join(refused.stderr.split()), refused.stderr
    listed = pixelflow(stack, config, "tasks", "--json")
    assert listed.returncode == 0 and listed.stdout == ""  # nothing was submitted


def test_missing_inputs_are_named(stack: Stack, signed_in: tuple[Path, str], tmp_path: Path) -> None:
    config, _ = signed_in
    (tmp_path / "empty").mkdir()
    for source, said in [
        ("nowhere.jpg", "no such file or folder"),
        (str(tmp_path / "empty"), "no images in this folder"),
    ]:
        refused = pixelflow(stack, config, "submit", source)
        assert refused.returncode == 2 and said in refused.stderr


def test_ctrl_c_stops_cleanly_and_says_what_was_submitted(
    stack: Stack, signed_in: tuple[Path, str], tmp_path: Path
) -> None:
    config, _ = signed_in
    photos = tmp_path / "many"
    photos.mkdir()
    for index in range(40):
        Image.new("RGB", (1200, 900), (index * 6, 80, 160)).save(photos / f"{index:02d}.jpg")
    process = subprocess.Popen(
        [str(PIXELFLOW), "submit", str(photos), "--resize", "64", "--parallel", "1", "--out", str(tmp_path / "out"),
         "--json"],
        env=_environment(stack, config),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    first = json.loads(process.stdout.readline())  # the first image is done: the rest are under way
    assert first["status"] == "COMPLETED"
    process.send_signal(signal.SIGINT)
    # Read through the same buffered pipe as the first line (communicate() reads the raw one).
    rest = process.stdout.read()
    assert process.wait(timeout=60) == 130
    assert process.stderr is not None
    errors = process.stderr.read()
    assert "interrupted" in errors and " of 40 submitted" in errors
    records = [first, *_lines(rest)]
    assert len(records) == 40  # one line per input, whether it finished, runs on or was never sent
    # Every task the command created is on stdout, finished or still running on the server.
    submitted = {record["task_id"] for record in records if "task_id" in record}
    listed = pixelflow(stack, config, "tasks", "--limit", "100", "--json")
    assert {task["id"] for task in _lines(listed.stdout)} == submitted
    assert len(submitted) < 40
    running = [record for record in records if "task_id" in record and record["stage"] not in ("done", "failed")]
    for record in running:
        assert record["task_id"] in errors  # named for `pixelflow watch ID`
    # No half-written result: every file in --out is a whole image.
    for path in (tmp_path / "out").rglob("*"):
        assert not path.name.startswith(".")
        with Image.open(path) as result:
            result.load()


def test_workers_and_an_admin_only_command(stack: Stack, signed_in: tuple[Path, str]) -> None:
    config, _ = signed_in
    pool = pixelflow(stack, config, "workers", "--json")
    assert pool.returncode == 0, pool.stderr
    shown = _lines(pool.stdout)[0]
    assert shown["workers"] and shown["queue"]["live_workers"] >= 1
    refused = pixelflow(stack, config, "dead-letters", "list")
    assert refused.returncode == 1 and "PERMISSION_DENIED" in refused.stderr


def test_not_logged_in_says_how_to(stack: Stack, tmp_path: Path) -> None:
    refused = pixelflow(stack, tmp_path / "nobody", "tasks")
    assert refused.returncode == 1 and "pixelflow login" in refused.stderr


def test_variants_are_downloaded_beside_each_other(stack: Stack, signed_in: tuple[Path, str], tmp_path: Path) -> None:
    config, _ = signed_in
    source, out = tmp_path / "photo.png", tmp_path / "out"
    source.write_bytes(image_bytes(300, 200))
    submitted = pixelflow(
        stack, config, "submit", str(source), "--op", "grayscale",
        "--variant", "thumb=50,format=webp", "--variant", "big=150,format=jpeg,quality=90", "--out", str(out), "--json",
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    [record] = _lines(submitted.stdout)
    assert record["outputs"] == {"thumb": str(out / "photo-thumb.webp"), "big": str(out / "photo-big.jpg")}
    with Image.open(out / "photo-thumb.webp") as thumb, Image.open(out / "photo-big.jpg") as big:
        assert (thumb.format, thumb.width, big.format, big.width, big.mode) == ("WEBP", 50, "JPEG", 150, "L")
    refused = pixelflow(stack, config, "submit", str(source), "--variant", "thumb=50", "--format", "webp")
    assert refused.returncode == 2 and "each variant has its own output" in " ".join(refused.stderr.split())


def test_webhooks_from_the_command_line(
    stack: Stack, signed_in: tuple[Path, str], tmp_path: Path, receiver: Receiver
) -> None:
    """`pixelflow webhooks rotate` prints the secret once, `set-url` needs it, and tasks from
    `submit` announce their end there (or at --callback-url), signed with it."""
    config, _ = signed_in
    default, own = f"/cli-default/{uuid.uuid4().hex}", f"/cli-own/{uuid.uuid4().hex}"
    refused = pixelflow(stack, config, "webhooks", "set-url", receiver.url(default))
    assert refused.returncode == 1 and "create a webhook secret first" in refused.stderr
    rotated = pixelflow(stack, config, "webhooks", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    secret = rotated.stdout.strip()
    assert secret.startswith("whsec_")
    assert pixelflow(stack, config, "webhooks", "set-url", receiver.url(default)).returncode == 0
    shown = json.loads(pixelflow(stack, config, "webhooks", "show").stdout)
    assert shown["default_url"] == receiver.url(default) and shown["has_secret"] is True
    assert secret not in json.dumps(shown)

    source = tmp_path / "photo.png"
    source.write_bytes(image_bytes(60, 40))
    for extra in ([], ["--callback-url", receiver.url(own)]):
        submitted = pixelflow(stack, config, "submit", str(source), "--wait", "--json", *extra)
        assert submitted.returncode == 0, submitted.stderr
    wait_until(lambda: bool(receiver.at(default) and receiver.at(own)), "an event never arrived", timeout=30)
    for path in (default, own):
        [request] = receiver.at(path)
        assert Webhook(secret).verify(request.body, request.headers)["type"] == "task.completed"
