"""The supervisor's policy: restart after a growing delay, reset after a healthy run. Pure
logic: the processes are stand-ins (the real loop is tests/integration/test_supervision.py)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from infra.process import ManagedProcess, ProcessFailedError
from infra.supervisor import RestartPolicy, Supervised, Supervisor

pytestmark = pytest.mark.unit


class _Process:
    def __init__(self) -> None:
        self.running = True
        self.exit_code: int | None = None
        self.log_path = Path("/logs/svc.log")


class _Unit:
    def __init__(self) -> None:
        self.process = _Process()
        self.starts = 0
        self.fail_next = 0

    def crash(self, code: int = -9) -> None:
        self.process.running, self.process.exit_code = False, code

    def restart(self) -> None:
        self.starts += 1
        if self.fail_next:
            self.fail_next -= 1
            raise ProcessFailedError("svc exited with code 1 before it was ready")
        self.process = _Process()


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _supervisor(unit: _Unit, clock: _Clock, logs: list[str]) -> Supervisor:
    policy = RestartPolicy(first_delay=1.0, max_delay=8.0, healthy_after=60.0)
    supervised = Supervised("svc", lambda: cast(ManagedProcess, unit.process), unit.restart)
    return Supervisor([supervised], policy, clock=clock, log=logs.append)


def test_the_delay_doubles_up_to_its_cap() -> None:
    policy = RestartPolicy(first_delay=1.0, max_delay=8.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_crashed_process_is_restarted_after_the_delay_and_logged() -> None:
    unit, clock = _Unit(), _Clock()
    logs: list[str] = []
    supervisor = _supervisor(unit, clock, logs)
    supervisor.tick()
    assert unit.starts == 0 and not logs  # running: nothing to do
    unit.crash(-9)
    supervisor.tick()
    assert unit.starts == 0 and "svc exited (code -9); restarting it in 1s" in logs[0]
    clock.now = 0.5
    supervisor.tick()
    assert unit.starts == 0  # not before the delay
    clock.now = 1.0
    supervisor.tick()
    assert unit.starts == 1 and logs[-1] == "svc restarted" and supervisor.restarts["svc"] == 1


def test_crashes_in_a_row_wait_longer_and_a_healthy_run_resets_the_count() -> None:
    unit, clock = _Unit(), _Clock()
    logs: list[str] = []
    supervisor = _supervisor(unit, clock, logs)
    delays = []
    for _ in range(4):  # it dies again right after each restart
        unit.crash()
        supervisor.tick()
        delays.append(logs[-1].split("restarting it in ")[1].split("s")[0])
        clock.now += 10
        supervisor.tick()
    assert delays == ["1", "2", "4", "8"]
    clock.now += 61  # a run longer than healthy_after
    supervisor.tick()
    unit.crash()
    supervisor.tick()
    assert "restarting it in 1s" in logs[-1]


def test_a_restart_that_fails_counts_as_another_crash() -> None:
    unit, clock = _Unit(), _Clock()
    logs: list[str] = []
    unit.fail_next = 1
    supervisor = _supervisor(unit, clock, logs)
    unit.crash(1)
    supervisor.tick()
    clock.now = 1
    supervisor.tick()
    assert "svc did not come back: svc exited with code 1 before it was ready" in logs[-1]
    supervisor.tick()
    assert "restarting it in 2s (2 crashes in a row)" in logs[-1]
    clock.now = 3
    supervisor.tick()
    assert unit.starts == 2 and logs[-1] == "svc restarted"
