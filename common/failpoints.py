"""Named steps where a test can make this process die, to prove exactly-once at each of them
(the technique of etcd's gofail and TiKV's fail-rs).

Off unless `PIXELFLOW_FAILPOINTS` names a step: a disabled failpoint is one dictionary lookup.
The value is a comma-separated list of `step=kill-once:PATH`: the first process to reach the
step creates PATH and sends SIGKILL to its whole process group (itself and its image pool: an
out-of-memory kill, a node lost); any process that finds PATH already there goes on, so the
worker that takes the task over (or the same worker restarted) is not killed again.

Steps: `worker.claimed` (the claim is written), `worker.fetched` (the source is in memory),
`worker.processed` (the result is encoded, not stored), `worker.stored` (the result blob is
written, the task does not name it yet), `task.final_locked` (the outcome's lock is taken, the
task document not yet written).
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

log = logging.getLogger("pixelflow.failpoints")

STEPS = frozenset({"worker.claimed", "worker.fetched", "worker.processed", "worker.stored", "task.final_locked"})


def _armed(text: str) -> dict[str, Path]:
    armed: dict[str, Path] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        step, _, action = entry.partition("=")
        kind, _, path = action.partition(":")
        if step not in STEPS or kind != "kill-once" or not path:
            raise ValueError(
                f"PIXELFLOW_FAILPOINTS: {entry!r} is not STEP=kill-once:PATH with STEP one of {sorted(STEPS)}"
            )
        armed[step] = Path(path)
    return armed


_ARMED = _armed(os.environ.get("PIXELFLOW_FAILPOINTS", ""))


def failpoint(step: str) -> None:
    marker = _ARMED.get(step)
    if marker is None:
        return
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return  # someone already died here: go on
    log.warning("failpoint: killing this process group", extra={"step": step})
    os.killpg(os.getpgrp(), signal.SIGKILL)
