"""fork() in a busy process (gunicorn --preload, Celery prefork): threads hold every pooled
connection and more wait for one when the process forks. The child must use none of the
parent's connections and be able to query; the parent must go on as if nothing happened.

The stock pools are not run here: in an idle process they already hand the parent's connection
to the child (tests/test_safety.py); in a busy one the child would wait on pool threads that
do not exist in it.
"""

from __future__ import annotations

import functools
import json
import subprocess

import pytest

from test_safety import run_scenario


@functools.cache
def _run(alias: str) -> subprocess.CompletedProcess[str]:
    return run_scenario("fork_busy.py", alias)


@pytest.mark.parametrize("alias", ["real_pool", "real_pool_dj"])
def test_fork_while_threads_hold_and_wait(alias: str) -> None:
    result = _run(alias)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == 0
    parents = {holder["before"] for holder in report["holders"]}
    assert len(parents) == 2
    assert isinstance(report["child"], list), report["child"]
    assert len(report["child"]) == 3
    assert not parents & set(report["child"]), "the child used a connection of its parent"
    # The parent goes on: each holder kept its connection through the fork and the child's
    # exit, the waiting checkouts were served, and the pool still serves.
    assert [holder.get("error") for holder in report["holders"]] == [None, None]
    assert all(holder["after"] == holder["before"] for holder in report["holders"])
    assert report["waiters"] == ["ok", "ok"]
    assert isinstance(report["parent_after"], int)


@pytest.mark.parametrize(
    "alias",
    [
        "real_pool",
        "real_pool_dj",
    ],
)
def test_forked_child_exits_quietly(alias: str) -> None:
    """The child's exit warns about nothing: it leaves the parent's connections alone."""
    result = _run(alias)
    assert result.returncode == 0
    assert result.stderr == ""
