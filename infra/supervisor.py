"""Keeps a running stack running: a process that exits is started again after a growing delay,
as docker-compose's `restart: unless-stopped` or a Kubernetes Deployment would, while the rest
keeps serving. One worker killed by a hostile image (out of memory) must not take PixelFlow down.

`python -m infra run` calls `tick()` once a second. The policy is pure and tested without
processes; the whole loop is tested on a real stack (tests/integration/test_supervision.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from infra.log import say
from infra.process import ManagedProcess, ProcessFailedError


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 1.0
    max_delay: float = 30.0
    # A run at least this long counts as healthy: the next crash starts from first_delay again.
    healthy_after: float = 60.0

    def delay(self, crashes_in_a_row: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** max(0, crashes_in_a_row - 1)))


@dataclass
class Supervised:
    """One process of the stack: how to find its current process, and how to start it again
    (returning once it is ready, raising if it is not)."""

    name: str
    process: Callable[[], ManagedProcess | None]
    restart: Callable[[], None]


@dataclass
class _State:
    crashes: int = 0
    started_at: float = 0.0
    restart_at: float | None = None


@dataclass
class Supervisor:
    units: list[Supervised]
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    clock: Callable[[], float] = time.monotonic
    log: Callable[[str], None] = say
    restarts: dict[str, int] = field(default_factory=dict)
    _states: dict[str, _State] = field(default_factory=dict)

    def __post_init__(self) -> None:
        now = self.clock()
        self._states = {unit.name: _State(started_at=now) for unit in self.units}
        self.restarts = {unit.name: 0 for unit in self.units}

    def tick(self) -> None:
        for unit in self.units:
            self._look_after(unit, self._states[unit.name])

    def _look_after(self, unit: Supervised, state: _State) -> None:
        now = self.clock()
        process = unit.process()
        if process is not None and process.running:
            if state.crashes and now - state.started_at >= self.policy.healthy_after:
                state.crashes = 0
            return
        if state.restart_at is None:  # found dead now
            state.crashes += 1
            delay = self.policy.delay(state.crashes)
            state.restart_at = now + delay
            code = process.exit_code if process is not None else None
            where = f"; log {process.log_path}" if process is not None else ""
            self.log(
                f"{unit.name} exited (code {code}); restarting it in {delay:.0f}s "
                f"({state.crashes} crash{'es' if state.crashes > 1 else ''} in a row){where}"
            )
            return
        if now < state.restart_at:
            return
        state.restart_at = None
        try:
            unit.restart()
        except (ProcessFailedError, OSError, RuntimeError) as exc:
            self.log(f"{unit.name} did not come back: {str(exc).splitlines()[0]}")
            return  # still dead: the next tick counts another crash and waits longer
        state.started_at = self.clock()
        self.restarts[unit.name] += 1
        self.log(f"{unit.name} restarted")
