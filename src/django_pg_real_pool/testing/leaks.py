"""The leak check behind ``no_pool_leaks`` and ``@pytest.mark.pool_leak_check``.

It compares the pools of this process when the test's body starts with what is left once
every fixture of the test has been torn down, so the answer does not depend on the order of
the test's fixtures, and pytest-django's transaction has given its connection back by then.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["check", "note_closed_alias", "request_check", "start"]

_REQUESTED = pytest.StashKey[bool]()
#: The pools when the test's body started.
_BEFORE = pytest.StashKey[dict[str, Any]]()
#: What pool_alias found checked out when it closed the test's aliases.
_NOTED = pytest.StashKey[list[str]]()


def _checked_out(alias: str) -> list[str]:
    from .aliases import checked_out

    in_use = checked_out(alias)
    return [f"{in_use} connection(s) of {alias!r} still checked out"] if in_use else []


def request_check(node: pytest.Item) -> None:
    """Check ``node`` for leaks (the fixture, or the marker)."""
    node.stash[_REQUESTED] = True


def note_closed_alias(node: pytest.Item, alias: str) -> None:
    """Record what ``alias`` still had checked out just before a fixture closes it."""
    node.stash.setdefault(_NOTED, []).extend(_checked_out(alias))


def start(item: pytest.Item) -> None:
    """At the start of the test's body: remember the pools it finds."""
    if item.stash.get(_REQUESTED, False):
        from django_pg_real_pool import pools

        item.stash[_BEFORE] = pools.snapshot()


def check(item: pytest.Item) -> None:
    """After the test's teardown: fail if a connection is still out or a pool it built is open."""
    before = item.stash.get(_BEFORE, None)
    if before is None:
        return  # not requested, or the body never ran
    from django_pg_real_pool import pools

    noted: list[str] = item.stash.get(_NOTED, [])
    problems = list(noted)
    for alias, entry in pools.snapshot().items():
        problems.extend(_checked_out(alias))
        if before.get(alias) is not entry:
            problems.append(
                f"the pool of {alias!r} built during the test is still open (close it with "
                "connections[alias].close_pool(), or add the alias with the pool_alias fixture)"
            )
    if problems:
        pytest.fail("pool leak: " + "; ".join(problems), pytrace=False)
