"""pool_stats(): checkouts, and the wait and hold time distributions, for both engines."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from django_pg_real_pool import pool_stats
from django_pg_real_pool.stats import BUCKETS, Distribution
from tight_pools import make_one_checkout_wait, one_connection, query


def stats_of(alias: str):
    found = pool_stats(alias)
    assert found is not None, f"{alias!r} has no pool yet"
    return found


def test_every_checkout_is_counted_and_timed(make_alias, alias: str) -> None:
    name = one_connection(make_alias, "dj" if alias == "dj" else "default")
    for _ in range(3):
        query(name)
    found = stats_of(name)
    assert found.checkouts == 3
    assert found.wait_time.count == 3
    assert found.hold_time.count == 3
    assert 0 < found.hold_time.total < 3.0


def test_a_connection_held_in_a_transaction_shows_in_hold_time(make_alias, alias: str) -> None:
    name = one_connection(make_alias, "dj" if alias == "dj" else "default")
    start = time.perf_counter()
    with transaction.atomic(using=name):
        query(name)
        time.sleep(0.06)  # the hold being measured
        query(name)
    held_at_most = time.perf_counter() - start
    found = stats_of(name)
    assert found.checkouts == 1, "one checkout serves the whole transaction"
    assert 0.06 <= found.hold_time.total <= held_at_most
    assert found.hold_time.quantile(1.0) == 0.1  # the bucket (0.05, 0.1]


def test_a_queued_checkout_shows_in_wait_time(make_alias, alias: str) -> None:
    name = one_connection(make_alias, "dj" if alias == "dj" else "default")
    query(name)
    make_one_checkout_wait(name, at_least=0.3)
    found = stats_of(name)
    # The holder's checkout and the queued one, after the first query.
    assert found.checkouts == 3
    assert found.wait_time.quantile(1.0) >= 0.5, found.wait_time  # at least (0.25, 0.5]
    assert found.wait_time.quantile(0.5) == pytest.approx(0.001, abs=0.1)  # uncontended


def test_distribution_quantiles_name_bucket_bounds() -> None:
    counts = [0] * (len(BUCKETS) + 1)
    counts[BUCKETS.index(0.001)] = 90
    counts[BUCKETS.index(0.1)] = 9
    counts[-1] = 1
    found = Distribution(tuple(counts), total=100.0)
    assert found.count == 100
    assert (found.quantile(0.5), found.quantile(0.95), found.quantile(1.0)) == (
        0.001,
        0.1,
        float("inf"),
    )
    assert Distribution((0,) * len(counts), 0.0).quantile(0.5) is None
    assert found.as_dict()["buckets"]["+Inf"] == 1
    assert found.as_dict()["buckets"]["0.001"] == 90
    with pytest.raises(ValueError, match="q must be in"):
        found.quantile(0)


def test_counts_stay_exact_when_threads_check_out_and_read_at_once() -> None:
    """Checkouts and returns take no lock (counters.py): their times wait in lists that
    readings and every ``_FOLD_AT`` of them sort into buckets. Nothing may be lost or
    counted twice, whichever thread folds, while others append."""
    import threading

    from django_pg_real_pool import counters as counters_module

    counters = counters_module.CheckoutCounters()
    threads, each = 8, 3 * counters_module._FOLD_AT + 7
    start = threading.Barrier(threads + 1)
    readings: list[counters_module.Counts] = []
    done = threading.Event()

    def check_out_and_return() -> None:
        start.wait(10)
        for _ in range(each):
            counters.checkout(object)
            counters.returned()

    def read() -> None:
        start.wait(10)
        while not done.is_set():
            readings.append(counters.read())

    workers = [threading.Thread(target=check_out_and_return) for _ in range(threads)]
    reader = threading.Thread(target=read)
    for thread in [*workers, reader]:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    reader.join()

    final = counters.read()
    assert final.checkouts == threads * each
    assert final.wait_time.count == threads * each
    assert final.hold_time.count == threads * each
    assert final.in_use == final.waiting == 0
    assert readings, "the reader never read while the threads ran"
    assert all(0 <= r.in_use <= threads and r.checkouts <= threads * each for r in readings)
    checkouts = [r.checkouts for r in readings]
    assert checkouts == sorted(checkouts), "a reading went backwards"
