"""The `pixelflow` command: accounts, bulk submission, tasks, the worker pool and the operators'
dead letters, over the SDK (pixelflow_client.AsyncClient). `pixelflow --help` lists it all.

Exit codes: 0 done; 1 a call failed or a task did not complete; 2 a bad command line;
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer
from pixelflow.v1 import quota_pb2, task_pb2

from common.validation import violations
from pixelflow_client.aio import AsyncClient
from pixelflow_client.cli import render
from pixelflow_client.cli.inputs import EXTENSIONS, InputError, expand
from pixelflow_client.cli.submit import Item, SubmitRun
from pixelflow_client.errors import PixelFlowError
from pixelflow_client.operations import SpecError, enum_value, parse, parse_variant

app = typer.Typer(
    name="pixelflow",
    help="Process images with PixelFlow: log in, submit images in bulk, follow and fetch tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
dead_letters = typer.Typer(help="Operators: the dead-letter topic (admins only).", no_args_is_help=True)
app.add_typer(dead_letters, name="dead-letters")
quotas = typer.Typer(help="Operators: users' quota overrides (admins only).", no_args_is_help=True)
app.add_typer(quotas, name="quotas")
webhooks = typer.Typer(help="Your webhooks: the signing secret and the default callback URL.", no_args_is_help=True)
app.add_typer(webhooks, name="webhooks")

Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="PIXELFLOW_SERVER",
        help="The gateway, host:port or https://host (default: the local stack's).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="One JSON object per line on stdout, for scripts.")]
Email = Annotated[str, typer.Option("--email", envvar="PIXELFLOW_EMAIL", help="The account's email.")]
TaskId = Annotated[str, typer.Argument(help="The task's id.")]
INTERRUPTED = 130


def _password(confirm: bool = False) -> str:
    # Scripts set PIXELFLOW_PASSWORD; people type it (never a command-line argument: ps shows those).
    return os.environ.get("PIXELFLOW_PASSWORD") or typer.prompt(
        "Password", hide_input=True, confirmation_prompt=confirm
    )


def _run(server: str | None, work: Callable[[AsyncClient], Awaitable[int | None]]) -> None:
    async def main() -> int | None:
        # A token from the environment (CI jobs, operators' scripts) is used as it is, never saved.
        token = os.environ.get("PIXELFLOW_ACCESS_TOKEN")
        client = AsyncClient(server, access_token=token) if token else AsyncClient.from_saved(server)
        async with client:
            return await work(client)

    try:
        code = asyncio.run(main())
    except PixelFlowError as error:
        render.print_error(error)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        # What was under way has said what it left behind (submit lists its tasks).
        raise typer.Exit(INTERRUPTED) from None
    raise typer.Exit(code or 0)


@app.command()
def register(
    email: Email, server: Server = None, name: Annotated[str, typer.Option(help="Display name.")] = ""
) -> None:
    """Create an account (then `pixelflow login`)."""
    password = _password(confirm=True)

    async def work(client: AsyncClient) -> None:
        user = await client.register(email, password, name)
        render.out.print(f"registered {user.email}; now run `pixelflow login --email {user.email}`", highlight=False)

    _run(server, work)


@app.command()
def login(email: Email, server: Server = None) -> None:
    """Sign in and keep the session (refreshed silently) in the user's config directory."""
    password = _password()

    async def work(client: AsyncClient) -> None:
        user = await client.login(email, password)
        render.out.print(f"logged in as {user.email} on {client.server}", highlight=False)

    _run(server, work)


@app.command()
def logout(server: Server = None) -> None:
    """End the saved session, here and on the server."""

    async def work(client: AsyncClient) -> None:
        await client.logout()
        render.out.print("logged out")

    _run(server, work)


@app.command()
def whoami(server: Server = None, json: Json = False) -> None:
    """The account the saved session belongs to."""

    async def work(client: AsyncClient) -> None:
        user = await client.whoami()
        if json:
            render.print_json(render.as_dict(user))
        else:
            render.out.print(
                f"{user.email} ({user.display_name or 'no display name'}) on {client.server}", highlight=False
            )

    _run(server, work)


@app.command()
def submit(
    sources: Annotated[list[str], typer.Argument(help="Image files, folders (walked), glob patterns or http(s) URLs.")],
    op: Annotated[
        list[str] | None,
        typer.Option(
            "--op", help="A step, in order, e.g. resize=800x600,fit=cover · crop=300x200 · rotate=90 · grayscale."
        ),
    ] = None,
    resize: Annotated[
        str, typer.Option(help="Shorthand for a last --op resize=…: WIDTH, WIDTHxHEIGHT or xHEIGHT.")
    ] = "",
    variant: Annotated[
        list[str] | None,
        typer.Option(
            "--variant",
            help="A named output from the same decode, after the --ops: thumb=200,format=webp · "
            "large=1600,format=jpeg,quality=85 (then no --format/--quality for the task).",
        ),
    ] = None,
    image_format: Annotated[str, typer.Option("--format", help="jpeg, png, webp, avif, gif, tiff or best.")] = "",
    quality: Annotated[int, typer.Option(help="1–100 for lossy formats (0: the format's default).")] = 0,
    lossless: Annotated[bool, typer.Option(help="Lossless WebP/AVIF.")] = False,
    keep_metadata: Annotated[bool, typer.Option(help="Keep EXIF/XMP/ICC.")] = False,
    skip_auto_orient: Annotated[bool, typer.Option(help="Do not turn images upright by EXIF.")] = False,
    out: Annotated[Path | None, typer.Option(help="Download each result into this folder (implies --wait).")] = None,
    wait: Annotated[bool, typer.Option(help="Follow each task until it ends.")] = False,
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Uploads at once.")] = 4,
    callback_url: Annotated[
        str, typer.Option(help="POST a signed event here when each task ends (default: your webhooks' URL).")
    ] = "",
    server: Server = None,
    json: Json = False,
) -> None:
    """Submit images in bulk through one pipeline; with --out, download the results."""
    try:
        inputs = expand(sources)
        operations = [parse(spec) for spec in [*(op or []), *([f"resize={resize}"] if resize else [])]]
        variants = [parse_variant(spec) for spec in variant or []]
        output = task_pb2.OutputOptions(quality=quality, lossless=lossless, keep_metadata=keep_metadata)
        if image_format:
            output.format = enum_value("ImageFormat", image_format)  # type: ignore[assignment]
    except (InputError, SpecError) as error:
        raise typer.BadParameter(str(error)) from None
    template = task_pb2.CreateTaskRequest(
        operations=operations, skip_auto_orient=skip_auto_orient, variants=variants, callback_url=callback_url
    )
    if output != task_pb2.OutputOptions() or not variants:  # variants carry their own outputs
        template.output.CopyFrom(output)
    _check_against_contract(template)

    async def work(client: AsyncClient) -> int:
        await client.whoami()  # signed in and reachable, before a single upload
        run = SubmitRun(
            client=client,
            template=template,
            items=[Item(item) for item in inputs],
            wait=wait or out is not None,
            out=out,
            parallel=parallel,
            json_lines=json,
            console=render.err,
        )
        await run.execute()
        _report(run)
        return INTERRUPTED if run.interrupted else 1 if run.failed else 0

    _run(server, work)


def _check_against_contract(template: task_pb2.CreateTaskRequest) -> None:
    """The contract's rules (the proto's buf.validate annotations) checked here, so a bad option
    stops the command before hundreds of uploads; the server checks them again."""
    probe = task_pb2.CreateTaskRequest()
    probe.CopyFrom(template)
    probe.upload_id = "0" * 32  # a well-formed id stands in for the source each image supplies
    broken = violations(probe)
    if broken:
        raise typer.BadParameter("; ".join(f"{v.field}: {v.message}" for v in broken))


def _report(run: SubmitRun) -> None:
    for line in run.summary():
        render.err.print(line, highlight=False, markup=False)
    if not run.json_lines and not run.wait:
        for item in run.items:
            if item.task is not None:
                render.out.print(f"{item.task.id}  {item.input.label}", highlight=False, markup=False)


StatusFilter = Annotated[str, typer.Option("--status", help="pending, processing, completed, failed or cancelled.")]


@app.command("tasks")
def list_tasks(
    status: StatusFilter = "",
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    server: Server = None,
    json: Json = False,
) -> None:
    """Your tasks, newest first."""
    try:
        wanted = enum_value("TaskStatus", status) if status else 0
    except SpecError as error:
        raise typer.BadParameter(str(error), param_hint="--status") from None

    async def work(client: AsyncClient) -> None:
        found: list[task_pb2.Task] = []
        async for task in client.list_tasks(status=wanted, page_size=min(limit, 100)):  # type: ignore[arg-type]
            found.append(task)
            if len(found) == limit:
                break
        if json:
            for task in found:
                render.print_json(render.as_dict(task))
        else:
            render.out.print(render.tasks_table(found))

    _run(server, work)


@app.command()
def watch(task_id: TaskId, server: Server = None, json: Json = False) -> None:
    """Follow a task until it ends; exit 1 unless it completes."""

    async def work(client: AsyncClient) -> int:
        last: task_pb2.Task | None = None
        async for task in client.watch_task(task_id):
            last = task
            if json:
                render.print_json(render.as_dict(task))
            else:
                render.out.print(render.task_line(task), highlight=False, markup=False)
        return 0 if last is not None and last.status == task_pb2.TASK_STATUS_COMPLETED else 1

    _run(server, work)


@app.command()
def get(task_id: TaskId, server: Server = None) -> None:
    """A task, as JSON."""

    async def work(client: AsyncClient) -> None:
        render.print_json(render.as_dict(await client.get_task(task_id)))

    _run(server, work)


@app.command()
def download(
    task_id: TaskId,
    out: Annotated[Path | None, typer.Option(help="The file to write (default: ID.EXT here).")] = None,
    server: Server = None,
) -> None:
    """Save a completed task's result."""

    async def work(client: AsyncClient) -> None:
        destination = out
        if destination is None:
            task = await client.get_task(task_id)
            destination = Path(f"{task_id}{EXTENSIONS.get(task.result.format, '.bin')}")
        content_type = await client.download(task_id, destination)
        render.out.print(f"{destination} ({content_type}, {destination.stat().st_size} bytes)", highlight=False)

    _run(server, work)


@app.command()
def cancel(task_id: TaskId, server: Server = None) -> None:
    """Cancel a pending or processing task."""

    async def work(client: AsyncClient) -> None:
        render.out.print(render.task_line(await client.cancel_task(task_id)), highlight=False, markup=False)

    _run(server, work)


@app.command()
def delete(task_id: TaskId, server: Server = None) -> None:
    """Delete a task, its source upload and its result."""

    async def work(client: AsyncClient) -> None:
        await client.delete_task(task_id)
        render.out.print(f"deleted {task_id}")

    _run(server, work)


@app.command()
def workers(server: Server = None, json: Json = False) -> None:
    """The worker pool and the queue."""

    async def work(client: AsyncClient) -> None:
        pool, queue = await client.list_workers(), await client.queue_stats()
        if json:
            render.print_json({"workers": [render.as_dict(w) for w in pool], "queue": render.as_dict(queue)})
            return
        render.out.print(render.workers_table(pool))
        render.out.print(
            f"queue: {queue.pending} pending · {queue.processing} processing · lag {queue.consumer_lag} · "
            f"{queue.throughput_per_second:.2f} tasks/s over the last minute · {queue.live_workers} live worker(s)",
            highlight=False,
        )

    _run(server, work)


@dead_letters.command("list")
def list_dead_letters(server: Server = None) -> None:
    """The dead-letter topic's records, oldest first (JSON lines)."""

    async def work(client: AsyncClient) -> None:
        async for letter in client.list_dead_letters():
            render.print_json(render.as_dict(letter))

    _run(server, work)


@dead_letters.command("replay")
def replay_dead_letter(
    partition: Annotated[int, typer.Argument(min=0)],
    offset: Annotated[int, typer.Argument(min=0)],
    server: Server = None,
) -> None:
    """Run a dead letter's task again, from a fresh attempt count."""

    async def work(client: AsyncClient) -> None:
        response = await client.replay_dead_letter(partition, offset)
        render.print_json(render.as_dict(response))

    _run(server, work)


@app.command()
def usage(server: Server = None, json: Json = False) -> None:
    """Your limits and what you use of each (`*`: set for you by an administrator)."""

    async def work(client: AsyncClient) -> None:
        answer = await client.usage()
        if json:
            render.print_json(render.as_dict(answer))
        else:
            render.out.print(render.usage_table(answer))

    _run(server, work)


UserId = Annotated[str, typer.Argument(help="The user's id (GetMe's `id`; `pixelflow whoami` shows yours).")]
Limit = Annotated[int | None, typer.Option(min=0)]


@quotas.command("get")
def get_quota(user_id: UserId, server: Server = None) -> None:
    """A user's overrides and usage (JSON)."""

    async def work(client: AsyncClient) -> None:
        render.print_json(render.as_dict(await client.get_quota(user_id)))

    _run(server, work)


@quotas.command("set")
def set_quota(
    user_id: UserId,
    active_tasks: Limit = None,
    tasks_per_day: Limit = None,
    stored_bytes: Limit = None,
    max_upload_bytes: Limit = None,
    server: Server = None,
) -> None:
    """Override some of a user's limits; the overrides already set for the others stay."""
    given = {
        "active_tasks": active_tasks,
        "tasks_per_day": tasks_per_day,
        "stored_bytes": stored_bytes,
        "max_upload_bytes": max_upload_bytes,
    }
    if all(value is None for value in given.values()):
        raise typer.BadParameter("give at least one limit, e.g. --active-tasks 5 (`pixelflow quotas clear` resets)")

    async def work(client: AsyncClient) -> None:
        # SetQuota replaces the overrides: merge with the ones in force so the others stay.
        overrides = (await client.get_quota(user_id)).overrides
        for name, value in given.items():
            if value is not None:
                setattr(overrides, name, value)
        render.print_json(render.as_dict(await client.set_quota(user_id, overrides)))

    _run(server, work)


@quotas.command("clear")
def clear_quota(user_id: UserId, server: Server = None) -> None:
    """Drop every override of a user: the defaults apply again."""

    async def work(client: AsyncClient) -> None:
        render.print_json(render.as_dict(await client.set_quota(user_id, quota_pb2.QuotaOverrides())))

    _run(server, work)


@webhooks.command("show")
def show_webhooks(server: Server = None) -> None:
    """Your default callback URL and which secret is in force (JSON; the secret itself is never shown again)."""

    async def work(client: AsyncClient) -> None:
        render.print_json(render.as_dict(await client.webhook_settings()))

    _run(server, work)


@webhooks.command("set-url")
def set_webhook_url(
    url: Annotated[str, typer.Argument(help='The callback URL of tasks that name none; "" clears it.')],
    server: Server = None,
) -> None:
    """Set the default callback URL (needs a secret: `pixelflow webhooks rotate`)."""

    async def work(client: AsyncClient) -> None:
        render.print_json(render.as_dict(await client.set_webhook_url(url)))

    _run(server, work)


@webhooks.command("rotate")
def rotate_webhook_secret(server: Server = None) -> None:
    """Make a new signing secret, in force at once; it is printed this once (stdout), keep it."""

    async def work(client: AsyncClient) -> None:
        answer = await client.rotate_webhook_secret()
        render.out.print(answer.secret, markup=False, highlight=False)

    _run(server, work)


def main() -> None:
    app()
