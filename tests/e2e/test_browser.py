"""The browser UI against the real stack, in Debian's Chromium driven by Playwright.

Register, log in, submit a URL task and an upload, watch their status change live (no reload),
open and download the result, log out; plus the error paths a person meets first, cancelling a
task, a filtered list whose tasks change status, pagination and the workers panel. Screenshots
of the main pages land in artifacts/screenshots/ (the README's comes from there).
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.api import httpbody_pb2
from PIL import Image
from pixelflow.v1 import auth_pb2_grpc, task_pb2, task_pb2_grpc, worker_pb2, worker_pb2_grpc
from playwright.sync_api import (
    Browser,
    BrowserContext,
    FilePayload,
    Locator,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)
from standardwebhooks import Webhook

from infra.stack import Stack
from tests.conftest import ARTIFACTS, TEST_PASSWORD, bearer, register_and_login, unique_email, wait_until
from tests.images import ImageServer, image_bytes
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ARTIFACTS / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 360, "height": 780}
# Long enough that a task is visibly PENDING/PROCESSING before it completes.
SLOW_SECONDS = 1.5
# Still fetching after a login and a few clicks (the worker's read timeout is 15 s).
STUCK_SECONDS = 5.0
LIVE = re.compile(r"^(PENDING|PROCESSING)$")
TASK_URL = re.compile(r"/tasks/(?!new$)[^/]+$")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make browser)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/slow.png", image_bytes(640, 480), "image/png", delay=SLOW_SECONDS)
    server.serve_bytes("/slower.jpg", image_bytes(400, 300, "JPEG"), "image/jpeg", delay=2 * SLOW_SECONDS)
    server.serve_bytes("/stuck.png", image_bytes(64, 48), "image/png", delay=STUCK_SECONDS)
    server.serve_bytes("/tiny.png", image_bytes(16, 12), "image/png")
    with server.running():
        yield server


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(20_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert not errors, f"uncaught errors in the page: {errors}"


def shot(page: Page, name: str, *, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if full_page:
        # Scrolled, the sticky header would be drawn in the middle of a full-page capture.
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=path, full_page=full_page)
    return path


def assert_fits_its_frame(image: Locator) -> None:
    """The image has loaded and is drawn whole inside its frame (not cropped by it)."""
    image.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    box = image.evaluate(
        """img => {
            const own = img.getBoundingClientRect();
            const frame = img.closest('[data-testid="image-frame"]').getBoundingClientRect();
            return [own.left - frame.left, own.top - frame.top, frame.right - own.right, frame.bottom - own.bottom];
        }"""
    )
    assert min(box) >= -0.5, f"the image overflows its frame by {box} (left, top, right, bottom)"


def assert_no_horizontal_scroll(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the viewport"


def register_in_ui(page: Page, ui_url: str, email: str, name: str = "Ada Lovelace") -> None:
    page.goto(f"{ui_url}/register")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_contain_text("Your account is ready")


def log_in(page: Page, ui_url: str, email: str, password: str = TEST_PASSWORD) -> None:
    if not page.url.endswith("/login"):
        page.goto(f"{ui_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def task_id_from(page: Page) -> str:
    match = re.search(r"/tasks/([0-9a-f]+)$", page.url)
    assert match, page.url
    return match.group(1)


def open_new_task_form(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New task").click()
    expect(page.get_by_role("heading", name="New task")).to_be_visible()


def sign_in_as_new_user(page: Page, ui_url: str, auth: auth_pb2_grpc.AuthServiceStub, prefix: str) -> str:
    """Registers through the API (fast), logs in through the UI; returns the access token."""
    email = unique_email(prefix)
    token = register_and_login(auth, email).access_token
    log_in(page, ui_url, email)
    expect(page).to_have_url(f"{ui_url}/")
    return token


def wait_for_status(
    tasks: task_pb2_grpc.TaskServiceStub, token: str, task_id: str, status: task_pb2.TaskStatus.ValueType
) -> None:
    wait_until(
        lambda: tasks.GetTask(task_pb2.GetTaskRequest(task_id=task_id), metadata=bearer(token)).status == status,
        f"task {task_id} never reached {task_pb2.TaskStatus.Name(status)}",
        timeout=15,
    )


def test_register_submit_watch_download_logout(
    stack: Stack, page: Page, images: ImageServer, auth: auth_pb2_grpc.AuthServiceStub, tmp_path: Path
) -> None:
    ui = stack.ui_url
    email = unique_email("ui")

    page.goto(f"{ui}/")
    expect(page).to_have_url(re.compile(r"/login$"))  # protected: redirected
    expect(page.get_by_role("heading", name="Log in to PixelFlow")).to_be_visible()
    shot(page, "login")

    register_in_ui(page, ui, email)
    log_in(page, ui, email)
    expect(page).to_have_url(f"{ui}/")
    expect(page.get_by_test_id("user-name")).to_have_text("Ada Lovelace")
    expect(page.get_by_text("No tasks yet")).to_be_visible()
    # Set once, checked at the end: nothing below reloads the page.
    page.evaluate("window.__sameDocument = true")

    # -- a URL task: resize 640×480 → 320 wide ---------------------------------------------
    open_new_task_form(page)
    page.get_by_label("Image URL").fill(images.url("/slow.png"))
    resize = page.get_by_test_id("operation").first
    resize.get_by_label("Width (px)").fill("320")
    page.get_by_role("button", name="Add Sharpen").click()
    page.get_by_label("Format").select_option("webp")
    page.get_by_label("Quality").fill("85")
    shot(page, "submit-form", full_page=True)
    page.get_by_role("button", name="Create task").click()
    expect(page).to_have_url(TASK_URL)
    url_task = task_id_from(page)
    expect(page.get_by_test_id("status-badge").first).to_have_attribute("data-status", LIVE)
    expect(page.get_by_test_id("status-badge").first).to_have_attribute("data-status", "COMPLETED")
    result = page.get_by_test_id("result-image")
    expect(result).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=result.element_handle())
    assert result.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [320, 240]
    expect(page.get_by_test_id("result-dimensions")).to_have_text("320 × 240 px")
    expect(page.get_by_test_id("source-url")).to_have_text(images.url("/slow.png"))
    # 640×480 in a smaller frame: scaled down whole, not cropped.
    assert_fits_its_frame(page.get_by_role("img", name="Original (loaded from its URL)"))
    assert_fits_its_frame(result)
    shot(page, "task-view", full_page=True)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == f"pixelflow-{url_task}.webp"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with Image.open(saved) as downloaded:
        assert downloaded.format == "WEBP"
        assert downloaded.size == (320, 240)

    # -- an upload: 200×100 PNG rotated 90° → 100×200 ------------------------------------------
    open_new_task_form(page)
    page.get_by_text("Upload a file").click()
    upload: FilePayload = {"name": "wide.png", "mimeType": "image/png", "buffer": image_bytes(200, 100)}
    page.get_by_label("Image file").set_input_files(files=[upload])
    expect(page.get_by_test_id("upload-preview")).to_be_visible()
    page.get_by_role("button", name="Remove Resize (step 1)").click()
    page.get_by_role("button", name="Add Rotate").click()
    page.get_by_role("button", name="Add Grayscale").click()
    page.get_by_role("button", name="Create task").click()
    expect(page).to_have_url(TASK_URL)
    upload_task = task_id_from(page)
    expect(page.get_by_test_id("original-preview")).to_be_visible()  # the local copy, side by side
    expect(page.get_by_test_id("status-badge").first).to_have_attribute("data-status", "COMPLETED")
    result = page.get_by_test_id("result-image")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=result.element_handle())
    assert result.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [100, 200]

    # -- a source that does not exist: FAILED, with the error's code and message ---------------
    open_new_task_form(page)
    page.get_by_label("Image URL").fill(images.url("/missing.png"))
    page.get_by_role("button", name="Create task").click()
    expect(page).to_have_url(TASK_URL)
    failed_task = task_id_from(page)
    expect(page.get_by_test_id("status-badge").first).to_have_attribute("data-status", "FAILED")
    expect(page.get_by_role("alert")).to_contain_text("Processing failed: SOURCE_")
    expect(page.get_by_test_id("task-error")).not_to_be_empty()
    expect(page.get_by_text("The browser could not load this image.")).to_be_visible()  # not a broken icon
    shot(page, "task-failed")

    # -- the dashboard follows a task live ----------------------------------------------------
    open_new_task_form(page)
    page.get_by_label("Image URL").fill(images.url("/slower.jpg"))
    page.get_by_role("button", name="Create task").click()
    expect(page).to_have_url(TASK_URL)
    live_task = task_id_from(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    live_row = page.locator(f'[data-task-id="{live_task}"]')
    expect(live_row.get_by_test_id("status-badge")).to_have_attribute("data-status", LIVE)
    rows = page.get_by_test_id("task-row")
    expect(rows).to_have_count(4)
    shot(page, "dashboard")  # with a task still on its way
    expect(live_row.get_by_test_id("status-badge")).to_have_attribute("data-status", "COMPLETED")
    # Newest first.
    order = [rows.nth(i).get_attribute("data-task-id") for i in range(4)]
    assert order == [live_task, failed_task, upload_task, url_task]
    assert page.evaluate("window.__sameDocument") is True

    page.get_by_label("Status").select_option("completed")
    expect(rows).to_have_count(3)
    page.get_by_label("Status").select_option("failed")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-task-id", failed_task)
    page.get_by_label("Status").select_option("cancelled")
    expect(page.get_by_text("No cancelled tasks")).to_be_visible()
    page.get_by_label("Status").select_option("")
    expect(rows).to_have_count(4)

    # -- the workers panel: each live worker with its capacity, as ListWorkers tells it -------
    with grpc.insecure_channel(stack.gateway_address) as channel:
        token = register_and_login(auth).access_token
        listed = worker_pb2_grpc.WorkerStatusServiceStub(channel).ListWorkers(
            worker_pb2.ListWorkersRequest(), metadata=bearer(token)
        )
    assert listed.workers and all(worker.capacity > 0 for worker in listed.workers)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workers").click()
    worker_rows = page.get_by_test_id("worker-row")
    expect(worker_rows).to_have_count(len(listed.workers))
    expect(page.get_by_text(re.compile(r"Updated \d+ s ago"))).to_be_visible()
    for worker in listed.workers:
        row = worker_rows.filter(has_text=worker.id)
        expect(row.get_by_test_id("worker-load")).to_have_text(re.compile(rf"^\d+ of {worker.capacity}$"))
    shot(page, "workers")

    # -- 360 px wide: nothing overflows ---------------------------------------------------------
    page.set_viewport_size(PHONE)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    expect(rows).to_have_count(4)
    assert_no_horizontal_scroll(page)
    shot(page, "dashboard-360")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workers").click()
    expect(worker_rows.first).to_be_visible()
    assert_no_horizontal_scroll(page)
    shot(page, "workers-360", full_page=True)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New task").click()
    assert_no_horizontal_scroll(page)
    shot(page, "submit-form-360", full_page=True)
    page.goto(f"{ui}/tasks/{url_task}")  # a reload: the session survives it (refresh token)
    expect(page.get_by_test_id("result-image")).to_be_visible()
    assert_fits_its_frame(page.get_by_role("img", name="Original (loaded from its URL)"))
    assert_fits_its_frame(page.get_by_test_id("result-image"))
    assert_no_horizontal_scroll(page)
    shot(page, "task-view-360", full_page=True)
    page.set_viewport_size(DESKTOP)

    # -- log out: the dashboard is gone and the session cannot be resumed ----------------------
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    assert page.evaluate("Object.keys(sessionStorage).length") == 0
    page.goto(f"{ui}/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(f"{ui}/tasks/{url_task}")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_wrong_password_and_duplicate_email_show_clear_errors(
    stack: Stack, page: Page, auth: auth_pb2_grpc.AuthServiceStub
) -> None:
    email = unique_email("wrong")
    register_and_login(auth, email)

    log_in(page, stack.ui_url, email, password="not the password")
    expect(page.get_by_role("alert")).to_have_text("Incorrect email or password.")
    expect(page).to_have_url(re.compile(r"/login$"))

    page.goto(f"{stack.ui_url}/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Password must have at least 8 characters")).to_be_visible()
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("already exists")


def test_a_second_user_does_not_see_the_first_users_tasks(
    stack: Stack, page: Page, auth: auth_pb2_grpc.AuthServiceStub, images: ImageServer
) -> None:
    first = register_and_login(auth)
    with grpc.insecure_channel(stack.gateway_address) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        theirs = tasks.CreateTask(
            task_pb2.CreateTaskRequest(source_url=images.url("/slow.png")), metadata=bearer(first.access_token)
        )

    second = unique_email("second")
    register_and_login(auth, second)
    log_in(page, stack.ui_url, second)
    expect(page).to_have_url(f"{stack.ui_url}/")
    expect(page.get_by_text("No tasks yet")).to_be_visible()
    expect(page.get_by_test_id("task-row")).to_have_count(0)
    shot(page, "dashboard-empty")

    page.goto(f"{stack.ui_url}/tasks/{theirs.id}")
    expect(page.get_by_role("heading", name="Task not found")).to_be_visible()


def test_an_image_over_the_upload_limit_is_refused_before_upload(
    stack: Stack, page: Page, auth: auth_pb2_grpc.AuthServiceStub
) -> None:
    email = unique_email("big")
    register_and_login(auth, email)
    log_in(page, stack.ui_url, email)
    expect(page).to_have_url(f"{stack.ui_url}/")
    open_new_task_form(page)
    page.get_by_text("Upload a file").click()
    expect(page.get_by_text("up to 25 MB")).to_be_visible()  # /config.json's maxUploadBytes
    too_big: FilePayload = {"name": "huge.png", "mimeType": "image/png", "buffer": b"\0" * (25 * 1024 * 1024 + 1)}
    page.get_by_label("Image file").set_input_files(files=[too_big])
    expect(page.get_by_role("alert")).to_contain_text("huge.png is 25 MB; the limit is 25 MB.")
    expect(page.get_by_test_id("upload-preview")).to_have_count(0)


def test_a_filtered_list_marks_tasks_that_change_status_and_a_task_can_be_cancelled(
    stack: Stack, page: Page, auth: auth_pb2_grpc.AuthServiceStub, images: ImageServer
) -> None:
    with grpc.insecure_channel(stack.gateway_address) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        token = sign_in_as_new_user(page, stack.ui_url, auth, "cancel")
        stuck = tasks.CreateTask(
            task_pb2.CreateTaskRequest(source_url=images.url("/stuck.png")), metadata=bearer(token)
        )
        wait_for_status(tasks, token, stuck.id, task_pb2.TASK_STATUS_PROCESSING)

        # -- filtered on Processing, the task is cancelled elsewhere: marked, not yanked away ----
        page.get_by_label("Status").select_option("processing")
        # The list shows only a reply for the filter picked (a reply of the unfiltered list that
        # lands after the pick is not shown): from here on, the row below is the filtered list's.
        expect(page).to_have_url(re.compile(r"[?&]status=processing"))
        rows = page.get_by_test_id("task-row")
        row = page.locator(f'[data-task-id="{stuck.id}"]')
        expect(row.get_by_test_id("status-badge")).to_have_attribute("data-status", "PROCESSING")
        tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=stuck.id), metadata=bearer(token))
        expect(row.get_by_test_id("status-badge")).to_have_attribute("data-status", "CANCELLED")
        expect(row).to_have_attribute("data-drifted", "true")
        expect(row.get_by_test_id("row-drift")).to_have_text("No longer processing")
        drift = page.get_by_test_id("filter-drift")
        expect(drift).to_contain_text("1 task is no longer processing.")
        shot(page, "dashboard-filter-drift")
        drift.get_by_role("button", name="Update list").click()
        expect(rows).to_have_count(0)
        expect(page.get_by_text("No processing tasks")).to_be_visible()
        expect(drift).to_have_count(0)

        # -- cancelled from its own page: CANCELLED at once, no result and nothing to download ---
        slow = tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=images.url("/stuck.png")), metadata=bearer(token))
    page.get_by_label("Status").select_option("")
    page.locator(f'[data-task-id="{slow.id}"]').get_by_role("link").click()
    expect(page).to_have_url(f"{stack.ui_url}/tasks/{slow.id}")
    badge = page.get_by_test_id("status-badge")
    expect(badge).to_have_attribute("data-status", LIVE)
    expect(page.get_by_text("Live", exact=True)).to_be_visible()
    page.get_by_role("button", name="Cancel task").click()
    expect(badge).to_have_attribute("data-status", "CANCELLED")
    expect(page.get_by_text("Cancelled: no result.")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel task")).to_have_count(0)
    expect(page.get_by_role("link", name="Download")).to_have_count(0)
    expect(page.get_by_text("Live", exact=True)).to_have_count(0)
    expect(page.get_by_role("alert")).to_have_count(0)
    shot(page, "task-cancelled")
    # The worker finishing its fetch afterwards changes nothing.
    page.wait_for_timeout(STUCK_SECONDS * 1000)
    expect(badge).to_have_attribute("data-status", "CANCELLED")
    expect(page.get_by_role("link", name="Download")).to_have_count(0)


def test_the_dashboard_pages_through_many_tasks(
    stack: Stack, page: Page, auth: auth_pb2_grpc.AuthServiceStub, images: ImageServer
) -> None:
    page_size = 10
    with grpc.insecure_channel(stack.gateway_address) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        token = sign_in_as_new_user(page, stack.ui_url, auth, "pages")
        created = [
            tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=images.url("/tiny.png")), metadata=bearer(token)).id
            for _ in range(page_size + 2)
        ]
        # The API's own pages, to compare with what the browser shows.
        first = tasks.ListTasks(task_pb2.ListTasksRequest(page_size=page_size), metadata=bearer(token))
        second = tasks.ListTasks(
            task_pb2.ListTasksRequest(page_size=page_size, page_token=first.next_page_token), metadata=bearer(token)
        )
    expected_first = [task.id for task in first.tasks]
    expected_second = [task.id for task in second.tasks]
    assert sorted(expected_first + expected_second) == sorted(created)
    assert len(expected_second) == 2 and not second.next_page_token

    page.reload()  # the tasks were created after the dashboard loaded
    rows = page.get_by_test_id("task-row")
    pagination = page.get_by_role("navigation", name="Pagination")

    def shown() -> list[str | None]:
        return [rows.nth(i).get_attribute("data-task-id") for i in range(rows.count())]

    expect(rows).to_have_count(page_size)
    expect(pagination.get_by_text("Page 1")).to_be_visible()
    expect(pagination.get_by_role("button", name="← Newer")).to_be_disabled()
    assert shown() == expected_first

    pagination.get_by_role("button", name="Older →").click()
    expect(pagination.get_by_text("Page 2")).to_be_visible()
    expect(rows).to_have_count(2)
    assert shown() == expected_second
    expect(pagination.get_by_role("button", name="Older →")).to_be_disabled()
    page.set_viewport_size(PHONE)
    assert_no_horizontal_scroll(page)
    shot(page, "dashboard-page-2-360")
    page.set_viewport_size(DESKTOP)

    pagination.get_by_role("button", name="← Newer").click()
    expect(pagination.get_by_text("Page 1")).to_be_visible()
    expect(rows).to_have_count(page_size)
    assert shown() == expected_first

    # Keyboard focus on a row is visible: the row's link draws a ring around the whole row.
    page.keyboard.press("Tab")
    rows.first.get_by_role("link").focus()
    assert rows.first.get_by_role("link").evaluate("link => link.matches(':focus-visible')")
    shot(page, "dashboard-keyboard-focus")


def test_the_builder_lays_a_watermark_and_keeps_an_animation(
    stack: Stack, page: Page, images: ImageServer, auth: auth_pb2_grpc.AuthServiceStub
) -> None:
    """A watermark from one of the user's uploads, placed from the builder; the new output
    choices (first frame only, colour profile) reach the task page."""
    ui = stack.ui_url
    token = sign_in_as_new_user(page, ui, auth, "watermark")
    logo = Image.new("RGBA", (20, 10), (0, 0, 255, 255))
    buffer = io.BytesIO()
    logo.save(buffer, "PNG")
    with grpc.insecure_channel(stack.gateway_address) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        chunk = task_pb2.CreateUploadRequest(filename="logo.png", body=httpbody_pb2.HttpBody(data=buffer.getvalue()))
        upload = tasks.CreateUpload(iter([chunk]), metadata=bearer(token))

    open_new_task_form(page)
    page.get_by_label("Image URL").fill(images.url("/slow.png"))  # 640×480
    page.get_by_role("button", name="Remove Resize (step 1)").click()
    page.get_by_role("button", name="Add Watermark").click()
    step = page.get_by_test_id("operation").first
    step.get_by_label("Upload id").fill("not-an-id")
    page.get_by_role("button", name="Create task").click()
    expect(step.get_by_text("must be the 32 hexadecimal characters of an id")).to_be_visible()
    step.get_by_label("Upload id").fill(upload.id)
    step.get_by_label("Position").select_option("north_west")
    step.get_by_label("Margin (px)").fill("10")
    step.get_by_label("Scale").fill("0.5")
    page.get_by_label("First frame only").check()
    page.get_by_label("Format").select_option("png")
    page.get_by_role("button", name="Create task").click()
    expect(page).to_have_url(TASK_URL)
    expect(page.get_by_test_id("status-badge").first).to_have_attribute("data-status", "COMPLETED")
    expect(page.get_by_text(f"Watermark {upload.id[:8]}… (north west)")).to_be_visible()
    expect(page.get_by_text("First frame only")).to_be_visible()
    task_id = task_id_from(page)
    with grpc.insecure_channel(stack.gateway_address) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        chunks = tasks.GetTaskResult(task_pb2.GetTaskResultRequest(task_id=task_id), metadata=bearer(token))
        data = b"".join(chunk.data for chunk in chunks)
    with Image.open(io.BytesIO(data)) as result:
        # Half of 640 px wide: a 320×160 mark, 10 px from the top-left corner.
        assert result.convert("RGB").getpixel((10 + 319, 10 + 159)) == (0, 0, 255)


def test_a_preset_made_in_the_ui_runs_a_task_and_the_task_keeps_its_steps(
    stack: Stack, page: Page, images: ImageServer, auth: auth_pb2_grpc.AuthServiceStub
) -> None:
    """Create a preset on the Presets page (its name checked before it is sent), submit a task
    with it from the new-task page, watch it complete with the preset's steps, then delete the
    preset: the task still shows the steps it ran."""
    ui = stack.ui_url
    token = sign_in_as_new_user(page, ui, auth, "presets")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Presets").click()
    expect(page.get_by_role("heading", name="Presets", exact=True)).to_be_visible()
    expect(page.get_by_text("No presets yet")).to_be_visible()

    page.get_by_role("button", name="New preset").click()
    form = page.get_by_role("form", name="New preset")
    form.get_by_label("Preset name").fill("Thumb Gray")
    step = form.get_by_test_id("operation").first
    step.get_by_label("Width (px)").fill("120")
    form.get_by_role("button", name="Add Grayscale").click()
    form.get_by_label("Format").select_option("webp")
    form.get_by_role("button", name="Save preset").click()
    expect(form.get_by_text("Must be 1 to 64 lower-case letters")).to_be_visible()
    form.get_by_label("Preset name").fill("thumb-gray")
    form.get_by_role("button", name="Save preset").click()
    expect(page.get_by_text("Preset “thumb-gray” saved.")).to_be_visible()
    listed = page.get_by_test_id("preset")
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text("thumb-gray")
    expect(listed.first).to_contain_text("Grayscale")
    # Opened again, the builder shows what was saved.
    page.get_by_role("button", name="Edit thumb-gray").click()
    edit = page.get_by_role("form", name="Edit preset thumb-gray")
    expect(edit.get_by_label("Preset name")).to_be_disabled()
    expect(edit.get_by_test_id("operation").first.get_by_label("Width (px)")).to_have_value("120")
    expect(edit.get_by_label("Format")).to_have_value("webp")
    edit.get_by_role("button", name="Cancel").click()
    shot(page, "presets")

    open_new_task_form(page)
    page.get_by_label("Image URL").fill(images.url("/slow.png"))  # 640×480
    page.get_by_text("Use a preset").click()
    expect(page.get_by_label("Preset", exact=True)).to_have_value("thumb-gray")
    expect(page.get_by_role("list", name="The preset's steps")).to_contain_text("Resize 120×auto")
    page.get_by_role("button", name="Create task").click()
    expect(page).to_have_url(TASK_URL)
    expect(page.get_by_test_id("status-badge").first).to_have_attribute("data-status", "COMPLETED")
    expect(page.get_by_test_id("task-preset")).to_contain_text("thumb-gray")
    task_id = task_id_from(page)
    with grpc.insecure_channel(stack.gateway_address) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        task = tasks.GetTask(task_pb2.GetTaskRequest(task_id=task_id), metadata=bearer(token))
    assert task.preset == "thumb-gray" and [op.WhichOneof("kind") for op in task.operations] == ["resize", "grayscale"]
    assert (task.result.width, task.result.height, task.result.format) == (120, 90, task_pb2.IMAGE_FORMAT_WEBP)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Presets").click()
    page.get_by_role("button", name="Delete thumb-gray").click()
    expect(page.get_by_text("No presets yet")).to_be_visible()
    page.goto(f"{ui}/tasks/{task_id}")
    expect(page.get_by_text("Resize 120×auto")).to_be_visible()
    expect(page.get_by_text("Grayscale")).to_be_visible()


def test_the_dashboard_shows_usage_against_quotas(
    stack: Stack, page: Page, auth: auth_pb2_grpc.AuthServiceStub, images: ImageServer
) -> None:
    token = sign_in_as_new_user(page, stack.ui_url, auth, "usage")
    usage = page.get_by_test_id("usage")
    # A new user: nothing used yet, against the stack's defaults (PIXELFLOW_QUOTA_*).
    expect(usage.locator("[data-quota=active_tasks] dd")).to_have_text("0 of 100")
    expect(usage.locator("[data-quota=tasks_per_day] dd")).to_have_text("0 of 10000")
    expect(usage.locator("[data-quota=stored_bytes] dd")).to_contain_text(" of ")
    with grpc.insecure_channel(stack.gateway_address) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        task = tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=images.url("/tiny.png")), metadata=bearer(token))
        wait_for_status(tasks, token, task.id, task_pb2.TASK_STATUS_COMPLETED)
    # The list's Reload reads the usage again: the task counts today, and is no longer active.
    page.get_by_role("button", name="Reload the list").click()
    expect(usage.locator("[data-quota=tasks_per_day] dd")).to_have_text("1 of 10000")
    expect(usage.locator("[data-quota=active_tasks] dd")).to_have_text("0 of 100")
    # The result is stored now: a non-zero amount of the 10 GB.
    expect(usage.locator("[data-quota=stored_bytes] dd")).to_have_text(re.compile(r"^[1-9][\d.]* [KMG]?B of 10 GB$"))
    shot(page, "usage")


def test_webhook_settings_sign_the_events_the_task_page_shows(
    stack: Stack, page: Page, images: ImageServer, auth: auth_pb2_grpc.AuthServiceStub, receiver: Receiver
) -> None:
    """On the Webhooks page: a default URL needs a secret first; the secret is shown once; a bad
    URL is refused at its field; saved, the default makes a task announce its end, which the
    receiver verifies with the secret from the page, and the task page shows the delivery.
    Rotating shows a new secret."""
    ui = stack.ui_url
    token = sign_in_as_new_user(page, ui, auth, "webhooks")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    expect(page.get_by_test_id("secret-state")).to_contain_text("No secret yet")
    path = f"/e2e/{uuid.uuid4().hex}"
    url_field = page.get_by_label("Callback URL")
    url_field.fill(receiver.url(path))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Create a signing secret first")).to_be_visible()

    page.get_by_role("button", name="Create secret").click()
    secret = page.get_by_test_id("new-secret").inner_text()
    assert secret.startswith("whsec_")
    expect(page.get_by_test_id("secret-state")).to_contain_text(f"whsec_…{secret[-4:]}")
    url_field.fill("ftp://example.com/hook")
    page.get_by_role("button", name="Save").click()
    expect(url_field).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("only http and https")).to_be_visible()
    url_field.fill(receiver.url(path))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    shot(page, "webhooks")
    page.reload()  # the secret is never shown again; the URL is kept
    expect(page.get_by_label("Callback URL")).to_have_value(receiver.url(path))
    expect(page.get_by_test_id("new-secret")).to_have_count(0)

    with grpc.insecure_channel(stack.gateway_address) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        task = tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=images.url("/tiny.png")), metadata=bearer(token))
    assert task.callback_url == receiver.url(path)
    page.goto(f"{ui}/tasks/{task.id}")
    deliveries = page.get_by_test_id("webhook-deliveries")
    expect(deliveries.get_by_test_id("delivery-state")).to_have_text("Delivered", timeout=30_000)
    expect(deliveries.get_by_test_id("delivery-attempt")).to_contain_text("HTTP 200")
    [request] = receiver.at(path)
    event = Webhook(secret).verify(request.body, request.headers)
    assert (event["type"], event["data"]["task"]["id"]) == ("task.completed", task.id)
    shot(page, "task-webhook", full_page=True)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_test_id("new-secret")).not_to_have_text(secret)
    assert page.get_by_test_id("new-secret").inner_text().startswith("whsec_")
