"""CPU time by component of a running stack, read from /proc: what the plumbing costs.

Every managed process leads a process group of its own (infra.process), so a component's CPU is
the sum over its group: utime + stime of the live members plus cutime + cstime (children that
ended and were waited for: PostgreSQL backends, pool processes replaced after a deadline).
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from infra.process import ManagedProcess
from infra.stack import Stack

TICKS = os.sysconf("SC_CLK_TCK")
# A worker's group holds its main process (Kafka, store, blobs, event loop) and its image pool.
POOL_SUFFIX = " (image pool)"


def _groups() -> dict[int, list[tuple[int, float, float]]]:
    """pgid → [(pid, own CPU s, waited-for children's CPU s)] of every process."""
    groups: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        pgid = int(fields[2])
        own = (int(fields[11]) + int(fields[12])) / TICKS
        children = (int(fields[13]) + int(fields[14])) / TICKS
        groups[pgid].append((int(entry.name), own, children))
    return groups


def _components(stack: Stack) -> dict[str, ManagedProcess]:
    found: dict[str, ManagedProcess | None] = {**stack.infra.processes(), **stack.services}
    found["envoy"] = stack.envoy.process if stack.envoy is not None else None
    found["ui"] = stack.ui
    if stack.seaweedfs is not None:
        found["seaweedfs"] = stack.seaweedfs.process
    return {name: process for name, process in found.items() if process is not None and process.pid is not None}


def snapshot(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each component (workers split into main process and pool)."""
    groups = _groups()
    cpu: dict[str, float] = {}
    for name, process in _components(stack).items():
        leader = process.pid
        members = groups.get(leader or -1, [])
        if name.startswith("worker_svc"):
            main = sum(own for pid, own, _ in members if pid == leader)
            cpu["worker_svc"] = cpu.get("worker_svc", 0.0) + main
            pool = sum(own + children for pid, own, children in members if pid != leader)
            pool += sum(children for pid, _, children in members if pid == leader)
            cpu["worker_svc" + POOL_SUFFIX] = cpu.get("worker_svc" + POOL_SUFFIX, 0.0) + pool
        else:
            cpu[name] = sum(own + children for _, own, children in members)
    return cpu


def per_task(before: dict[str, float], after: dict[str, float], tasks: int) -> dict[str, float]:
    """Milliseconds of CPU per task by component, between two snapshots."""
    return {name: (after[name] - before.get(name, 0.0)) * 1000 / tasks for name in after}
