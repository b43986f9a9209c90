"""The second engine's pools are listed in django-db-connection-pool's container too, where
code written for django-db-connection-pool looks them up, under the registry's rules."""

from __future__ import annotations

import os
import warnings

from dj_db_conn_pool.core import pool_container
from django.db import connections

from django_pg_real_pool import close_all_pools
from tight_pools import query


def test_pool_is_listed_under_its_alias_once_built() -> None:
    query("dj")
    assert pool_container.get("dj") is connections["dj"].pool


def test_a_settings_change_lists_the_new_pool(make_alias) -> None:
    name = make_alias("dj")
    query(name)
    first = pool_container.get(name)
    connections.settings[name]["POOL_OPTIONS"] = {"POOL_SIZE": 2, "MAX_OVERFLOW": 0}
    query(name)
    assert pool_container.get(name) is connections[name].pool is not first


def test_closed_pools_are_no_longer_listed(make_alias) -> None:
    name = make_alias("dj")
    query(name)
    assert pool_container.has(name)
    close_all_pools()
    assert not pool_container.has(name)
    assert not pool_container.has("dj")


def test_first_engine_pools_are_not_listed(make_alias) -> None:
    name = make_alias("default")
    query(name)
    assert not pool_container.has(name)


def test_forked_child_finds_no_inherited_pool() -> None:
    query("dj")
    assert pool_container.has("dj")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with pool threads running
        pid = os.fork()
    if pid == 0:
        os._exit(1 if pool_container.has("dj") else 0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child still finds the parent's pool"
    assert pool_container.has("dj")
