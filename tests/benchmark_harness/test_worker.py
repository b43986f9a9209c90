"""worker.py, the process every measurement runs in: its protocol, in a real subprocess on
the test server, with a tiny scenario."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.contenders import BY_NAME
from benchmarks.workers import WORKER, WorkerError, WorkerProcess
from suite import DATABASE, server


@pytest.fixture
def worker() -> Iterator[WorkerProcess]:
    process = WorkerProcess(sys.executable, "test")
    try:
        yield process
    finally:
        process.close()


def databases() -> dict[str, Any]:
    common = {
        "NAME": DATABASE,
        "USER": server().user,
        "HOST": server().host,
        "PORT": server().port,
    }
    return {
        "bench": common | BY_NAME["real_pool"].entry(2),
        # The stock backend without a pool: a reference that exists on every Django.
        "reference": common | BY_NAME["no_pool"].entry(0),
    }


def test_the_worker_imports_only_the_standard_library_and_django() -> None:
    """It must run unchanged in 1.1.0's venv, where django_pg_real_pool is 1.1.0."""
    tree = ast.parse(WORKER.read_text())
    imported = {
        (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported - sys.stdlib_module_names - {"__future__"} == {"django"}


def test_setup_warms_every_alias_and_reports_the_versions(worker: WorkerProcess) -> None:
    found = worker.ask("setup", databases=databases(), fill={"bench": 2, "reference": 1})
    assert found["pid"] == worker.process.pid
    assert found["versions"]["Django"]
    assert found["versions"]["django-pg-real-pool"]
    assert set(found["versions"]) >= {"psycopg", "psycopg-pool", "SQLAlchemy"}


def test_per_query_times_the_contender_and_the_reference_round_by_round(
    worker: WorkerProcess,
) -> None:
    worker.ask("setup", databases=databases(), fill={"bench": 2})
    variants = [
        {"name": "3 queries", "queries": 3, "atomic": False},
        {"name": "2 queries in atomic", "queries": 2, "atomic": True},
    ]
    found = worker.ask(
        "per_query",
        alias="bench",
        reference="reference",
        variants=variants,
        chunk_seconds=0.01,
        rounds=2,
    )
    assert set(found) == {"3 queries", "2 queries in atomic"}
    for sides in found.values():
        for side in ("contender", "reference"):
            assert sides[side]["requests"] >= 1
            assert len(sides[side]["cpu"]) == len(sides[side]["wall"]) == 2
            assert all(value > 0 for value in sides[side]["wall"])


def test_throughput_counts_per_thread_and_reports_latency(worker: WorkerProcess) -> None:
    worker.ask("setup", databases=databases(), fill={"bench": 2})
    found = worker.ask("throughput", alias="bench", threads=3, work=0.001, duration=0.2)
    assert found["failures"] == 0, found["failure_samples"]
    assert len(found["per_thread"]) == 3
    assert found["completed"] == sum(found["per_thread"]) > 0
    assert found["completed_with_tail"] >= found["completed"]
    # Each thread adds at most the share of one request in flight at the deadline.
    assert found["completed"] <= found["done"] < found["completed"] + 3
    latency = found["latency"]
    assert 0.001 <= latency["p50"] <= latency["p99"] <= latency["max"]
    assert found["cpu_per_request"] > 0


def test_failed_requests_are_counted_not_dropped(worker: WorkerProcess) -> None:
    broken = databases()["reference"] | {"NAME": "no_such_database"}
    worker.ask("setup", databases={"broken": broken}, fill={"broken": 0})
    found = worker.ask("throughput", alias="broken", threads=2, work=0.0, duration=0.05)
    assert found["completed"] == 0
    assert found["done"] == 0  # a failed request is no share of anything
    assert found["failures"] >= 2
    assert any("no_such_database" in sample for sample in found["failure_samples"])


def test_a_setup_that_cannot_connect_fails_with_the_servers_message(
    worker: WorkerProcess,
) -> None:
    broken = databases()["bench"] | {"NAME": "no_such_database"}
    with pytest.raises(WorkerError, match="no_such_database"):
        worker.ask("setup", databases={"bench": broken}, fill={"bench": 2})


def test_an_error_is_an_answer_and_the_worker_goes_on(worker: WorkerProcess) -> None:
    with pytest.raises(WorkerError, match="unknown op 'nonsense'"):
        worker.ask("nonsense")
    worker.ask("setup", databases=databases(), fill={})
    found = worker.ask("throughput", alias="bench", threads=1, work=0.0, duration=0.05)
    assert found["completed"] > 0


def test_quit_ends_the_process(worker: WorkerProcess) -> None:
    worker.send("quit")
    assert worker.process.wait(30) == 0
