"""CPU time by component of a running stack, read from /proc: what the plumbing costs.

A component's CPU is the sum over its managed process and every descendant (by parent pid:
PostgreSQL runs under runuser in a session of its own, so process groups would miss it):
utime + stime of the live ones plus cutime + cstime (children that ended and were waited for:
PostgreSQL backends, pool processes replaced after a deadline).
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


def _processes() -> dict[int, tuple[int, float, float]]:
    """pid → (parent pid, own CPU s, waited-for children's CPU s) of every process."""
    found: dict[int, tuple[int, float, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        own = (int(fields[11]) + int(fields[12])) / TICKS
        children = (int(fields[13]) + int(fields[14])) / TICKS
        found[int(entry.name)] = (int(fields[1]), own, children)
    return found


def _descendants(root: int, processes: dict[int, tuple[int, float, float]]) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (parent, _, _) in processes.items():
        children[parent].append(pid)
    found, stack = [], list(children[root])
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children[pid])
    return found


def _tree_cpu(leader: int, processes: dict[int, tuple[int, float, float]]) -> float:
    _, own, children = processes[leader]
    return own + children + sum(processes[pid][1] + processes[pid][2] for pid in _descendants(leader, processes))


def process_cpu(process: ManagedProcess | None) -> float:
    """CPU seconds used so far by a managed process and everything below it (0 if not running)."""
    processes = _processes()
    if process is None or process.pid is None or process.pid not in processes:
        return 0.0
    return _tree_cpu(process.pid, processes)


def _components(stack: Stack) -> dict[str, ManagedProcess]:
    found: dict[str, ManagedProcess | None] = {**stack.infra.processes(), **stack.services}
    found["envoy"] = stack.envoy.process if stack.envoy is not None else None
    found["ui"] = stack.ui
    if stack.seaweedfs is not None:
        found["seaweedfs"] = stack.seaweedfs.process
    return {name: process for name, process in found.items() if process is not None and process.pid is not None}


def snapshot(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each component (workers split into main process and pool)."""
    processes = _processes()
    cpu: dict[str, float] = {}
    for name, process in _components(stack).items():
        leader = process.pid
        if leader is None or leader not in processes:
            continue
        _, leader_own, leader_children = processes[leader]
        below = sum(processes[pid][1] + processes[pid][2] for pid in _descendants(leader, processes))
        if name.startswith("worker_svc"):
            cpu["worker_svc"] = cpu.get("worker_svc", 0.0) + leader_own
            pool = "worker_svc" + POOL_SUFFIX
            cpu[pool] = cpu.get(pool, 0.0) + below + leader_children
        else:
            cpu[name] = _tree_cpu(leader, processes)
    return cpu


def per_task(before: dict[str, float], after: dict[str, float], tasks: int) -> dict[str, float]:
    """Milliseconds of CPU per task by component, between two snapshots."""
    return {name: (after[name] - before.get(name, 0.0)) * 1000 / tasks for name in after}
