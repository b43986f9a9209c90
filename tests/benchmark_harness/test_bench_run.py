"""python -m benchmarks end to end: a --quick run on a few contenders, and a Ctrl-C.

1.1.0 is left out: its venv is a pip install from PyPI (about 15 s, and the network), which
the suite should not depend on; test_previous_release.py checks the pinning decisions and
every full run builds the venv.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import django
import pytest

from conftest import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        django.VERSION < (5, 1), reason="the reference, Django's stock pool, arrived in 5.1"
    ),
]

CONTENDERS = "stock_pool,real_pool,real_pool_dj,persistent"


def command(tmp_path: Path, *extra: str) -> list[str]:
    charts = ["--charts", str(tmp_path)] if find_spec("matplotlib") else ["--no-charts"]
    return [
        sys.executable,
        "-m",
        "benchmarks",
        "--quick",
        "--contenders",
        CONTENDERS,
        "--results",
        str(tmp_path),
        *charts,
        *extra,
    ]


def test_a_quick_run_measures_evaluates_and_writes_everything(tmp_path: Path) -> None:
    done = subprocess.run(
        command(tmp_path, "--scenarios", "per_query,throughput,stats"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"^\[ *\d+s \| ~ *\d+[ms0-9]* left\] per_query 1/\d+: ", out, re.M)
    for number in (1, 2, 3, 4):
        assert re.search(rf"^  {number}\. (MET|NOT MET|NOT EVALUATED) ", out, re.M), number
    assert "needs the per_query scenario with real_pool and 1.1.0" in out, "1.1.0 left out"

    results = json.loads((tmp_path / "results.json").read_text())
    assert {p["contender"] for p in results["per_query"]["processes"]} == set(CONTENDERS.split(","))
    assert len(results["per_query"]["processes"]) == 2 * 4, "2 processes per contender"
    placement = results["placement"]
    if len(os.sched_getaffinity(0)) >= 2:
        assert placement["server"]
        assert placement["clients"]
        assert not set(placement["server"]) & set(placement["clients"])
    processes = results["per_query"]["processes"] + results["throughput"]["processes"]
    assert {tuple(p["cpus"]) for p in processes} == {
        tuple(placement["clients"]) or tuple(sorted(os.sched_getaffinity(0)))
    }, "every measured process ran on the clients' cores"
    runs = results["throughput"]["repeats"][0]
    assert all(run["failures"] == 0 for run in runs)
    assert {run["pool"] for run in runs if run["contender"] == "persistent"} == {None}
    assert results["stats"]["pool"]["stats"]
    assert results["machine"]["cores"] == os.cpu_count()
    assert [goal["number"] for goal in results["goals"]] == [1, 2, 3, 4]

    text = (tmp_path / "results.md").read_text()
    assert "- Placement: the server's processes on CPU " in text or not placement["server"]
    for heading in ("Goals", "Cost per query", "Throughput and latency", "Fairness", "slower"):
        assert heading in text
    if find_spec("matplotlib"):
        for chart in ("throughput.png", "latency.png", "per_query.png"):
            assert (tmp_path / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*partial")), "no staging file left"


def read_until(process: subprocess.Popen[str], pattern: str, deadline: float) -> str:
    """The output up to the first line matching ``pattern`` (polled, no sleeping)."""
    assert process.stdout is not None
    seen = ""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(deadline - time.monotonic()):
                break
            line = process.stdout.readline()
            if not line:
                break
            seen += line
            if re.search(pattern, line):
                return seen
    raise AssertionError(f"no line matching {pattern!r} in:\n{seen}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_leaves_no_server_no_worker_and_no_results(tmp_path: Path) -> None:
    process = subprocess.Popen(
        command(tmp_path, "--scenarios", "per_query", "--processes", "50"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        seen = read_until(process, r"per_query 1/", time.monotonic() + 180)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, seen + rest
    assert "no results written" in rest
    server = re.search(r"^\[.*\] server: .*\(pid (\d+)\)", seen, re.M)
    assert server is not None, seen
    workers = [int(pid) for pid in re.findall(r"pid (\d+)\)$", seen, re.M)]
    assert workers
    for pid in [int(server.group(1)), *workers]:
        assert not alive(pid), f"process {pid} outlived the benchmark"
    assert not list(tmp_path.iterdir()), "nothing written"
