"""Where the benchmark's processes run: the server on cores of its own, every measured process
on the others.

Left to itself, the scheduler of a machine with a few cores places each client thread and the
server backend it waits for anew, all the time: on the same core (a handover per query) or on
two (a wake-up across cores), next to another process's threads or not. Each process draws
its own mix, and with it its speed: on 2 cores, the stock pool's own CPU per query ranged
from 39 to 250 us over the processes of one run, and one throughput cell of one contender
spanned 0.70-1.20x the stock pool over a run's repeats. Pinning takes the draw away and is
what a deployment looks like, where PostgreSQL has a machine of its own: the server's
processes (its backends inherit the postmaster's cores) on the upper half of the cores
this process may use, the contenders' processes on the lower half.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Placement", "choose", "pin", "pin_tree"]


@dataclass(frozen=True)
class Placement:
    """The cores of the server and of the measured processes; both empty when not pinned,
    with ``reason`` saying why."""

    server: tuple[int, ...] = ()
    clients: tuple[int, ...] = ()
    reason: str = ""

    @property
    def pinned(self) -> bool:
        return bool(self.server)

    def describe(self) -> str:
        if not self.pinned:
            return f"not pinned: {self.reason}"
        return (
            f"the server's processes on CPU {_cpus(self.server)}, every measured process on "
            f"CPU {_cpus(self.clients)}"
        )

    def as_json(self) -> dict[str, object]:
        return {"server": list(self.server), "clients": list(self.clients), "reason": self.reason}

    @classmethod
    def from_json(cls, found: dict[str, Any]) -> Placement:
        """The placement ``as_json()`` wrote (into results.json)."""
        return cls(tuple(found["server"]), tuple(found["clients"]), found["reason"])


def _cpus(cpus: tuple[int, ...]) -> str:
    return ", ".join(map(str, cpus))


def choose(*, wanted: bool = True, available: set[int] | None = None) -> Placement:
    """The upper half of the usable cores for the server, the lower half for the clients."""
    if not wanted:
        return Placement(reason="--no-pin")
    if not hasattr(os, "sched_setaffinity"):
        return Placement(reason="this system cannot pin processes to cores")
    cpus = sorted(os.sched_getaffinity(0) if available is None else available)
    if len(cpus) < 2:
        return Placement(reason=f"{len(cpus)} usable core: nothing to keep apart")
    half = len(cpus) // 2
    return Placement(server=tuple(cpus[half:]), clients=tuple(cpus[:half]))


def pin(pid: int, cpus: tuple[int, ...]) -> None:
    """Pin ``pid``'s main thread (the threads it starts afterwards inherit it)."""
    if cpus:
        os.sched_setaffinity(pid, cpus)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # pid (comm) state ppid ...: comm may hold spaces and parentheses.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def pin_tree(pid: int, cpus: tuple[int, ...]) -> int:
    """Pin a server: its postmaster (whose backends, forked later, inherit its cores) and the
    processes it already runs. How many processes were pinned."""
    if not cpus:
        return 0
    pinned = 0
    for process in [pid, *_children(pid)]:
        try:
            pin(process, cpus)
        except ProcessLookupError:  # an exiting child
            continue
        pinned += 1
    return pinned
