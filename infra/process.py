"""Long-running child processes that start cleanly, report readiness and never become orphans.

How orphans are made impossible (the parent Python may be killed with SIGKILL, when no
``finally``, ``atexit`` or signal handler runs):

* Every server is a *direct* child of this Python (PostgreSQL included: it is started with
  ``postgres -D`` as the postgres user via ``Popen(user=...)``, not through ``pg_ctl``, which
  would daemonise it away from us).
* In the child, between fork and exec, ``prctl(PR_SET_PDEATHSIG, sig)`` asks the kernel to send
  ``sig`` when the parent dies. It survives ``exec`` (our binaries are not set-uid) and is set
  *after* Python's ``setreuid`` (CPython runs ``preexec_fn`` last), since changing credentials
  clears it. If the parent already died before the prctl took effect we exit at once.
* Trap: the kernel's "parent" is the *thread* that forked. Children spawned from a worker thread
  would be killed when that thread ends (e.g. a ThreadPoolExecutor shutting down), so every
  spawn is handed to one daemon thread that lives as long as the process.
* ``start_new_session=True`` puts each server in its own process group: Ctrl-C in a terminal
  does not hit it behind our back, and ``stop()`` signals the whole group (PostgreSQL backends
  included), escalating to SIGKILL after a timeout.
* The orderly path stays the normal one: ``Infrastructure`` stops everything from ``stop()``,
  ``__exit__``, ``atexit`` and (for the CLI) SIGTERM/SIGINT handlers.
"""

import contextlib
import ctypes
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path

from infra.log import say

_PR_SET_PDEATHSIG = 1
# Resolved once in the parent: the child between fork and exec should do as little as possible.
_prctl: Callable[..., int] | None = (
    ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
)


class ProcessFailedError(RuntimeError):
    """A managed process exited early or did not become ready in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: all sockets are held until every port is chosen, so the
    kernel cannot hand the same port out twice (which one-at-a-time picking allows)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _death_signal_setter(sig: signal.Signals, parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent_pid:  # parent died before the prctl: nobody will stop us
            os._exit(1)

    return preexec


class _Spawner:
    """One long-lived daemon thread that performs every ``Popen`` (see module docstring)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _loop(self) -> None:
        while True:
            job, future = self._jobs.get()
            try:
                future.set_result(job())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                future.set_exception(exc)

    def spawn(self, job: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="infra-spawner", daemon=True)
                self._thread.start()
        future: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((job, future))
        return future.result()


_SPAWNER = _Spawner()


class ManagedProcess:
    """A server child process with its own process group and a log file.

    ``stop_signal`` is what an orderly ``stop()`` sends (PostgreSQL wants SIGINT, "fast
    shutdown"); ``death_signal`` is what the kernel sends if this Python dies.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        death_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.death_signal = death_signal
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        """How it ended (negative: killed by that signal); None while running or never started."""
        return None if self._proc is None else self._proc.poll()

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # The log is appended to across runs of a persistent data dir; readiness checks and
            # error tails only look at what this run wrote.
            log.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.argv}\n".encode())
            log.flush()
            self._log_offset = log.tell()

            def popen() -> subprocess.Popen[bytes]:
                return subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.cwd,
                    env=self.env,
                    user=self.user,
                    start_new_session=True,
                    # Needed for PDEATHSIG; it only calls a pre-resolved prctl (module docstring).
                    preexec_fn=_death_signal_setter(self.death_signal, os.getpid()),  # noqa: PLW1509
                )

            self._proc = _SPAWNER.spawn(popen)

    def log_text(self) -> str:
        """Everything this run has written to the log so far."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_ready(self, predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> None:
        """Poll ``predicate`` until true; fail fast (with the log tail) on exit or timeout.

        Exceptions from the predicate count as "not ready yet" (a refused connection is normal
        while a server boots); the last one is reported on timeout.
        """
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            if self._proc is None:
                raise ProcessFailedError(f"{self.name} was never started")
            code = self._proc.poll()
            if code is not None:
                raise ProcessFailedError(
                    f"{self.name} exited with code {code} before it was ready; log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                if predicate():
                    return
            except Exception as exc:  # noqa: BLE001 - see docstring
                last_error = exc
            if time.monotonic() >= deadline:
                raise ProcessFailedError(
                    f"{self.name} not ready after {timeout:.0f}s (last check: {last_error!r}); "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(interval)

    def stop(self, timeout: float = 20.0) -> int | None:
        """Signal the process group, wait, then SIGKILL it. Idempotent; returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal_group(proc.pid, self.stop_signal)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                say(f"{self.name}: no exit {timeout:.0f}s after {self.stop_signal.name}, sending SIGKILL")
                self._signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        # Children that outlived the leader (none expected) go too.
        self._signal_group(proc.pid, signal.SIGKILL)
        return proc.returncode

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def rss_bytes(self) -> int | None:
        """Resident memory of the leader process (Linux), for reports."""
        if not self.running or self.pid is None:
            return None
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return None


def pid_alive(pid: int) -> bool:
    """True if a process (not a zombie) with this pid exists."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def group_alive(pgid: int) -> bool:
    """True if any non-zombie process is still in process group ``pgid``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False
