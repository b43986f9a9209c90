"""placement.py: the server on cores of its own, the measured processes on the others."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchmarks.placement import Placement, choose, pin, pin_tree

needs_two_cores = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pinning needs two usable cores",
)


def test_the_server_takes_the_upper_half_and_the_clients_the_lower() -> None:
    assert choose(available={0, 1}) == Placement(server=(1,), clients=(0,))
    assert choose(available={4, 2, 7, 3}) == Placement(server=(4, 7), clients=(2, 3))
    three = choose(available={0, 1, 2})
    assert three.server == (1, 2)
    assert three.clients == (0,)
    assert "CPU 1, 2" in three.describe()


def test_nothing_is_pinned_on_one_core_or_when_asked_not_to() -> None:
    alone = choose(available={3})
    assert not alone.pinned
    assert alone.describe() == "not pinned: 1 usable core: nothing to keep apart"
    refused = choose(wanted=False, available={0, 1})
    assert not refused.pinned
    assert refused.describe() == "not pinned: --no-pin"
    pin(os.getpid(), refused.clients)  # no cores: leaves this process alone


# A parent that starts one child at once and another when told: a postmaster and its backends.
_TREE = """
import os, subprocess, sys
wait = [sys.executable, "-c", "import sys; sys.stdin.read()"]
early = subprocess.Popen(wait, stdin=subprocess.PIPE)
print(early.pid, flush=True)
sys.stdin.readline()
late = subprocess.Popen(wait, stdin=subprocess.PIPE)
print(late.pid, sorted(os.sched_getaffinity(late.pid)), flush=True)
sys.stdin.readline()
for child in (early, late):
    child.stdin.close()
    child.wait()
"""


@needs_two_cores
def test_a_server_is_pinned_with_the_processes_it_runs_and_those_it_starts_later() -> None:
    cpus = (max(os.sched_getaffinity(0)),)
    parent = subprocess.Popen(
        [sys.executable, "-c", _TREE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdin is not None
    assert parent.stdout is not None
    try:
        early = int(parent.stdout.readline())
        assert pin_tree(parent.pid, cpus) == 2
        assert os.sched_getaffinity(parent.pid) == set(cpus)
        assert os.sched_getaffinity(early) == set(cpus)
        parent.stdin.write("\n")
        parent.stdin.flush()
        late, late_cpus = parent.stdout.readline().split(" ", 1)
        assert int(late) not in (parent.pid, early)
        assert late_cpus.strip() == str(list(cpus)), "a later child inherits the cores"
        assert os.sched_getaffinity(0) != set(cpus), "the caller itself stays unpinned"
    finally:
        parent.stdin.write("\n")
        parent.stdin.close()
        parent.wait(30)
        parent.stdout.close()
